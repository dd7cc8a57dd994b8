//! Logging, set up once by `main`: tracing to stderr (text or JSON) and to rotating files
//! through tracing-appender's non-blocking writer. The file writer is built first, so an
//! unwritable log dir is a clear start-up error rather than silently lost logs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::cli::{LogFormat, LogRotation};
use crate::config::LogConfig;

/// Log files are `fakemail.<date>.log`; `fakemail.current.log` links to the current one.
pub const FILE_PREFIX: &str = "fakemail";

/// Keeps the background log writer alive; dropping it flushes what is buffered.
#[must_use = "dropping the guard stops file logging"]
pub struct LogGuard {
    _file: WorkerGuard,
    /// Where the files go.
    pub dir: PathBuf,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot write logs to {}: {source}", .dir.display())]
    Dir {
        dir: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("bad log filter: {0}")]
    Filter(String),
    #[error("logging was already initialised: {0}")]
    Init(String),
}

/// Installs the global subscriber: stderr plus rotating files in `dir`.
///
/// # Errors
/// [`LogError::Dir`] when the dir cannot be created or written.
pub fn init(config: &LogConfig, dir: &Path) -> Result<LogGuard, LogError> {
    let dir_err = |source: Box<dyn std::error::Error + Send + Sync>| LogError::Dir {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| dir_err(e.into()))?;
    let rotation = match config.rotation {
        LogRotation::Daily => Rotation::DAILY,
        LogRotation::Hourly => Rotation::HOURLY,
        LogRotation::Never => Rotation::NEVER,
    };
    let appender = RollingFileAppender::builder()
        .rotation(rotation)
        .filename_prefix(FILE_PREFIX)
        .filename_suffix("log")
        .max_log_files(config.keep.max(1))
        .latest_symlink(format!("{FILE_PREFIX}.current.log"))
        .build(dir)
        .map_err(|e| dir_err(e.into()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);

    let filter = EnvFilter::try_new(&config.filter).map_err(|e| LogError::Filter(e.to_string()))?;
    let ansi = std::io::stderr().is_terminal();
    let (stderr_layer, file_layer) = match config.format {
        LogFormat::Text => (
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .boxed(),
            fmt::layer().with_writer(writer).with_ansi(false).boxed(),
        ),
        LogFormat::Json => (
            fmt::layer().json().with_writer(std::io::stderr).boxed(),
            fmt::layer().json().with_writer(writer).boxed(),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr_layer)
        .with(file_layer)
        .try_init()
        .map_err(|e| LogError::Init(e.to_string()))?;
    Ok(LogGuard {
        _file: guard,
        dir: dir.to_path_buf(),
    })
}
