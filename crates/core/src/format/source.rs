//! Reading a workflow file defensively: size, type and encoding are checked before any YAML
//! parsing, so a wrong path or a binary file fails fast with a clear message.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::diagnostic::LoadError;

/// Workflow files are a few kilobytes; anything past this is a mistake or an attack.
pub const MAX_WORKFLOW_BYTES: u64 = 1024 * 1024;

pub fn read(path: &Path) -> Result<Arc<str>, LoadError> {
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound {
            path: path.to_path_buf(),
        },
        std::io::ErrorKind::IsADirectory => LoadError::IsDirectory {
            path: path.to_path_buf(),
        },
        _ => LoadError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(LoadError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_WORKFLOW_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_WORKFLOW_BYTES,
        });
    }
    // Special files report a length of zero; the bounded read protects against those too.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_WORKFLOW_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_WORKFLOW_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: MAX_WORKFLOW_BYTES,
        });
    }
    decode(path, bytes)
}

fn decode(path: &Path, bytes: Vec<u8>) -> Result<Arc<str>, LoadError> {
    let not_text = |reason: String| LoadError::NotText {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(not_text(format!("it contains a NUL byte at offset {at}")));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        not_text(format!("invalid UTF-8 at byte {at} (line {line})"))
    })?;
    Ok(Arc::from(text.strip_prefix('\u{feff}').unwrap_or(&text)))
}
