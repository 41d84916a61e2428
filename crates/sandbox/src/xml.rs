//! Text for the XML the query and REST-XML services (EC2, Route 53) answer with.

/// Escapes text for an XML element. Quotes stay as they are, as AWS writes them in messages
/// (`The subnet ID 'subnet-…' does not exist`, `[name='app.example.com.', type='CNAME']`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}
