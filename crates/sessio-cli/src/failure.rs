//! How the CLI fails: one line on stderr and an exit code scripts can test.

use std::process::ExitCode;

use sessio::{StoreError, StoreErrorKind};

/// A failed command.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad usage, bad store spec, unreachable store: exit code 2.
    Usage(String),
    /// The operation failed or found nothing: exit code 1.
    Failed(String),
}

impl Failure {
    /// Prints the message and returns the exit code.
    pub(crate) fn exit(self) -> ExitCode {
        let (code, message) = match self {
            Failure::Usage(m) => (2, m),
            Failure::Failed(m) => (1, m),
        };
        eprintln!("sessio: {message}");
        ExitCode::from(code)
    }

    /// A store error met while running a command against `store` (the redacted spec):
    /// an unreachable store is exit code 2 like a failed connect, anything else 1.
    pub(crate) fn store(store: &str, e: &StoreError) -> Failure {
        let message = format!("{store}: {}", chain(e));
        if *e.kind() == StoreErrorKind::Unavailable {
            Failure::Usage(message)
        } else {
            Failure::Failed(message)
        }
    }
}

/// An error and its sources on one line, skipping sources whose text the previous
/// message already contains.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    line.replace('\n', " ")
}
