//! The systemd readiness protocol (sd_notify(3)): when `NOTIFY_SOCKET` is set, send `READY=1`
//! once the server serves and `STOPPING=1` when it begins to shut down, so that a
//! `Type=notify` unit is "active" only when clients can connect.
//!
//! Written by hand rather than with a crate: it is one datagram on a Unix socket, std has
//! everything it needs (abstract socket names included), and it keeps the crate free of
//! `unsafe` and of another dependency. Without `NOTIFY_SOCKET` every call does nothing.

/// The variable systemd sets for a `Type=notify` service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Tells the service manager the server is ready: every listener is bound and serving.
pub fn ready(status: &str) {
    send_logged(&format!("READY=1\nSTATUS={status}"));
}

/// Tells the service manager the server is shutting down.
pub fn stopping() {
    send_logged("STOPPING=1\nSTATUS=draining in-flight requests");
}

fn send_logged(state: &str) {
    if let Err(e) = send(state) {
        // Not fatal: the unit times out, or the socket was not meant for us.
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Sends `state` (newline-separated `KEY=value` assignments) to `$NOTIFY_SOCKET`.
/// Returns whether anything was sent (false when the variable is unset or empty).
///
/// # Errors
/// The socket cannot be reached, or its address is of a kind this platform cannot reach
/// (`vsock:` addresses).
pub fn send(state: &str) -> std::io::Result<bool> {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET).filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    send_to(&socket, state)?;
    Ok(true)
}

#[cfg(unix)]
fn send_to(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;

    let sock = UnixDatagram::unbound()?;
    let name = socket.as_bytes();
    let sent = match name.first() {
        Some(b'/') => sock.send_to(state.as_bytes(), socket)?,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(b'@') => {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name[1..])?;
            sock.send_to_addr(state.as_bytes(), &addr)?
        }
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "{NOTIFY_SOCKET}={} is not a socket path this program can use",
                    socket.to_string_lossy()
                ),
            ));
        }
    };
    if sent != state.len() {
        return Err(std::io::Error::other("the notification was truncated"));
    }
    Ok(())
}

#[cfg(not(unix))]
fn send_to(_socket: &std::ffi::OsStr, _state: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "service manager notification needs Unix sockets",
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn receive(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1").unwrap();
        assert_eq!(receive(&sock), "READY=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("fakemail-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        assert_eq!(receive(&sock), "STOPPING=1");
    }

    #[test]
    fn other_addresses_are_errors() {
        assert!(send_to(std::ffi::OsStr::new("vsock:2:1234"), "READY=1").is_err());
    }
}
