//! `eks-upgrade schema`

use std::io::Write;

use crate::ui::Ui;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::workflow::schema::schema_text;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The schema is committed as `workflows/schema.json`; workflow files point \
editors at it with `# yaml-language-server: $schema=schema.json`."
)]
pub struct Args {}

pub fn run(ui: &Ui, _: Args) -> ExitStatus {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(schema_text().as_bytes())
        .and_then(|()| out.flush())
    {
        Ok(()) => ExitStatus::Success,
        // A closed pipe (`| head`) is the reader's choice, not a failure worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitStatus::Success,
        Err(e) => {
            ui.error(format!("cannot write the schema: {e}"));
            ExitStatus::Usage
        }
    }
}
