//! The command-line and environment form of the logging set-up (feature `clap`), flattened
//! by every service so `BULWARK_LOG_FORMAT` means the same everywhere.

use crate::LogFormat;

/// How the process logs; [`LOG_FILTER_VAR`](crate::LOG_FILTER_VAR) is read by
/// [`init_logging`](crate::init_logging) itself, not here.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct LogArgs {
    /// Log format: json or text.
    #[arg(long, env = "BULWARK_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// Install the global subscriber in the chosen format (see [`crate::init_logging`]).
    pub fn init(&self, default_filter: &str) {
        crate::init_logging(self.log_format, default_filter);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn flag_env_and_default() {
        let cmd = Cli::command();
        let a = cmd
            .get_arguments()
            .find(|a| a.get_id() == "log_format")
            .unwrap();
        assert_eq!(a.get_long(), Some("log-format"));
        assert_eq!(a.get_env().unwrap(), "BULWARK_LOG_FORMAT");
        assert_eq!(a.get_default_values(), ["text"]);
        assert_eq!(Cli::parse_from(["x"]).log.log_format, LogFormat::Text);
        let json = Cli::parse_from(["x", "--log-format", "JSON"]);
        assert_eq!(json.log.log_format, LogFormat::Json);
    }

    #[test]
    fn refuses_an_unknown_format() {
        let e = Cli::try_parse_from(["x", "--log-format", "yaml"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("text or json"), "{e}");
    }
}
