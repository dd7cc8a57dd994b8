//! Files a running server keeps in its data dir so that other `fakemail` processes can reach
//! it (sled allows one process per store): `server.json` (where it listens and the admin token
//! it takes, mode 0600) and `admin-token` (the random admin token kept across restarts for a
//! server not given one, mode 0600).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the admin token file in the data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// Name of the running-server file in the data dir.
pub const SERVER_FILE: &str = "server.json";

/// What `server.json` says.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:8025`.
    pub http: String,
    /// Address of the SMTP listener, e.g. `127.0.0.1:1025` (absent in files of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<String>,
    /// Address of the POP3 listener, e.g. `127.0.0.1:1110`; absent when it is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop3: Option<String>,
    pub pid: u32,
    /// The admin token this server takes, whether it came from `--admin-token` or from the
    /// `admin-token` file: the file alone can be stale (left by an earlier start without the
    /// flag), this cannot.
    #[serde(default)]
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for ServerInfo {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerInfo")
            .field("http", &self.http)
            .field("pid", &self.pid)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// The address clients on this machine use: an unspecified bind address becomes loopback.
pub fn local_addr(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// The base URL clients on this machine use: an unspecified bind address becomes loopback.
pub fn local_url(addr: SocketAddr) -> String {
    format!("http://{}", local_addr(addr))
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// The admin token file's path in `data_dir`.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_TOKEN_FILE)
}

/// Reads the admin token kept in `data_dir`, making one (mode 0600) when there is none.
pub fn ensure_admin_token(data_dir: &Path) -> std::io::Result<String> {
    let path = admin_token_path(data_dir);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let t = existing.trim();
        if t.len() >= 32 {
            return Ok(t.to_owned());
        }
    }
    let (token, _) = crate::service::token::generate();
    write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// Reads the admin token kept in `data_dir`.
pub fn read_admin_token(data_dir: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(admin_token_path(data_dir))?
        .trim()
        .to_owned())
}

/// Writes `server.json`.
pub fn write_server_info(data_dir: &Path, info: &ServerInfo) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    write_private(&data_dir.join(SERVER_FILE), &json)
}

/// Reads `server.json`, if a server wrote one.
pub fn read_server_info(data_dir: &Path) -> std::io::Result<ServerInfo> {
    let bytes = std::fs::read(data_dir.join(SERVER_FILE))?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

/// Removes `server.json` (on shutdown).
pub fn remove_server_info(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(SERVER_FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let t1 = ensure_admin_token(dir.path()).unwrap();
        let t2 = ensure_admin_token(dir.path()).unwrap();
        assert_eq!(t1, t2);
        assert_eq!(read_admin_token(dir.path()).unwrap(), t1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(admin_token_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn server_info_round_trips_and_urls_use_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let info = ServerInfo {
            http: local_url("0.0.0.0:8025".parse().unwrap()),
            smtp: Some(local_addr("[::]:1025".parse().unwrap()).to_string()),
            pop3: Some(local_addr("0.0.0.0:1110".parse().unwrap()).to_string()),
            pid: 7,
            admin_token: Some("fm_secret".into()),
        };
        assert!(!format!("{info:?}").contains("fm_secret"));
        assert_eq!(info.http, "http://127.0.0.1:8025");
        assert_eq!(info.smtp.as_deref(), Some("[::1]:1025"));
        assert_eq!(info.pop3.as_deref(), Some("127.0.0.1:1110"));
        write_server_info(dir.path(), &info).unwrap();
        assert_eq!(read_server_info(dir.path()).unwrap(), info);
        remove_server_info(dir.path());
        assert!(read_server_info(dir.path()).is_err());
        assert_eq!(local_url("[::]:1".parse().unwrap()), "http://[::1]:1");
    }
}
