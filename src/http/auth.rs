//! The admin rule of DESIGN.md: with a token configured (`STREAMVISOR_ADMIN_TOKEN`, or
//! `[admin] token_file`), admin routes need `Authorization: Bearer <token>` (compared in constant
//! time); with none, they answer loopback connections only: the connection's local and peer
//! addresses both loopback, and no `Forwarded`, `X-Forwarded-*` or `Via` header (a proxy or
//! sidecar on the same host would make every remote caller look local). Never judged by what a
//! forwarded header claims.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use thiserror::Error;

/// The environment variable that holds the admin token.
pub const TOKEN_ENV: &str = "STREAMVISOR_ADMIN_TOKEN";

/// The admin token could not be loaded.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The token file could not be read.
    #[error("cannot read the admin token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The token is not UTF-8 text.
    #[error("the admin token from {origin} is not UTF-8 text")]
    NotUtf8 {
        /// Where it came from.
        origin: String,
    },
    /// The token is empty.
    #[error("the admin token from {origin} is empty")]
    Empty {
        /// Where it came from.
        origin: String,
    },
}

/// Why an admin request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A token is configured and the request carries none (401).
    MissingToken,
    /// A token is configured and the request carries another one (401).
    WrongToken,
    /// No token is configured and the client is not on loopback (403).
    NotLoopback,
    /// No token is configured and the request came through a proxy (403).
    Forwarded,
}

/// What the admin rule reads of a request's connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connection {
    /// The client's address, as the socket has it.
    pub peer: Option<SocketAddr>,
    /// The address the server took the connection on.
    pub local: Option<SocketAddr>,
    /// The request carries a `Forwarded`, `X-Forwarded-*` or `Via` header.
    pub forwarded: bool,
}

impl Connection {
    /// Whether `name` is a header a proxy adds (`Forwarded`, `X-Forwarded-*`, `Via`).
    pub fn is_forwarding_header(name: &str) -> bool {
        name.eq_ignore_ascii_case("forwarded")
            || name.eq_ignore_ascii_case("via")
            || name
                .get(..12)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case("x-forwarded-"))
    }
}

impl Refusal {
    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::MissingToken => "this route needs `Authorization: Bearer <token>`",
            Refusal::WrongToken => "the bearer token is not the admin token",
            Refusal::NotLoopback => {
                "no admin token is configured: admin routes answer loopback clients only"
            }
            Refusal::Forwarded => {
                "no admin token is configured: a request through a proxy (Forwarded, \
                 X-Forwarded-*, Via) needs the token"
            }
        }
    }
}

/// The admin rule: a token, or loopback only.
#[derive(Clone, Default)]
pub struct AdminAuth {
    token: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("AdminAuth")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl AdminAuth {
    /// Loopback only, no token.
    pub fn loopback_only() -> Self {
        AdminAuth::default()
    }

    /// Requires `token`.
    pub fn with_token(token: &str) -> Self {
        AdminAuth {
            token: Some(Arc::from(token.as_bytes())),
        }
    }

    /// The token from `STREAMVISOR_ADMIN_TOKEN` when set, else from `token_file` (trimmed) when
    /// given, else none (loopback only).
    pub fn load(token_file: Option<&Path>) -> Result<Self, AuthError> {
        if let Some(token) = std::env::var_os(TOKEN_ENV) {
            let token = token.into_string().map_err(|_| AuthError::NotUtf8 {
                origin: TOKEN_ENV.to_owned(),
            })?;
            return Self::checked(token.trim(), TOKEN_ENV);
        }
        match token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Self::checked(text.trim(), &path.display().to_string())
            }
            None => Ok(Self::loopback_only()),
        }
    }

    fn checked(token: &str, origin: &str) -> Result<Self, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Empty {
                origin: origin.to_owned(),
            });
        }
        Ok(Self::with_token(token))
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Admits or refuses a request with this `Authorization` header on `connection`.
    pub fn admit(
        &self,
        authorization: Option<&str>,
        connection: Connection,
    ) -> Result<(), Refusal> {
        match &self.token {
            Some(token) => {
                let offered = authorization
                    .and_then(|value| value.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token)
                    .ok_or(Refusal::MissingToken)?;
                if constant_time_eq(offered.trim().as_bytes(), token) {
                    Ok(())
                } else {
                    Err(Refusal::WrongToken)
                }
            }
            None => {
                let loopback = |address: Option<SocketAddr>| {
                    address.is_some_and(|a| a.ip().to_canonical().is_loopback())
                };
                if !loopback(connection.peer) || !loopback(connection.local) {
                    Err(Refusal::NotLoopback)
                } else if connection.forwarded {
                    Err(Refusal::Forwarded)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Compares without an early exit: the time taken depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (index, byte) in a.iter().enumerate() {
        let other = b.get(index % b.len().max(1)).copied().unwrap_or(0);
        difference |= usize::from(byte ^ other);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct connection from `text` to the loopback listener.
    fn peer(text: &str) -> Connection {
        Connection {
            peer: text.parse().ok(),
            local: "127.0.0.1:8080".parse().ok(),
            forwarded: false,
        }
    }

    #[test]
    fn without_a_token_a_proxied_or_non_loopback_listener_is_refused() {
        let auth = AdminAuth::loopback_only();
        let proxied = Connection {
            forwarded: true,
            ..peer("127.0.0.1:1")
        };
        assert_eq!(auth.admit(None, proxied), Err(Refusal::Forwarded));
        let on_every_interface = Connection {
            local: "0.0.0.0:8080".parse().ok(),
            ..peer("127.0.0.1:1")
        };
        assert_eq!(
            auth.admit(None, on_every_interface),
            Err(Refusal::NotLoopback)
        );
        // With the token, neither matters.
        let guarded = AdminAuth::with_token("t");
        assert_eq!(guarded.admit(Some("Bearer t"), proxied), Ok(()));
        for name in ["Forwarded", "via", "X-Forwarded-For", "x-forwarded-host"] {
            assert!(Connection::is_forwarding_header(name), "{name}");
        }
        for name in ["X-Real-Agent", "Authorization", "X-Forwarded"] {
            assert!(!Connection::is_forwarding_header(name), "{name}");
        }
    }

    #[test]
    fn a_token_is_needed_when_one_is_set_even_on_loopback() {
        let auth = AdminAuth::with_token("s3cret");
        let local = peer("127.0.0.1:5000");
        assert_eq!(auth.admit(None, local), Err(Refusal::MissingToken));
        assert_eq!(
            auth.admit(Some("Basic s3cret"), local),
            Err(Refusal::MissingToken)
        );
        assert_eq!(
            auth.admit(Some("Bearer wrong"), local),
            Err(Refusal::WrongToken)
        );
        assert_eq!(
            auth.admit(Some("Bearer s3cre"), local),
            Err(Refusal::WrongToken)
        );
        assert_eq!(
            auth.admit(Some("Bearer s3cret!"), local),
            Err(Refusal::WrongToken)
        );
        assert_eq!(
            auth.admit(Some("Bearer s3cret"), peer("10.1.2.3:9")),
            Ok(())
        );
        assert_eq!(
            auth.admit(Some("bearer s3cret"), local),
            Ok(()),
            "the scheme is case-blind"
        );
    }

    #[test]
    fn without_a_token_only_loopback_peers_are_admitted() {
        let auth = AdminAuth::loopback_only();
        assert_eq!(auth.admit(None, peer("127.0.0.1:1")), Ok(()));
        assert_eq!(auth.admit(None, peer("[::1]:1")), Ok(()));
        assert_eq!(
            auth.admit(None, peer("[::ffff:127.0.0.1]:1")),
            Ok(()),
            "mapped IPv4"
        );
        assert_eq!(
            auth.admit(None, peer("192.168.0.7:1")),
            Err(Refusal::NotLoopback)
        );
        assert_eq!(
            auth.admit(Some("Bearer x"), peer("192.168.0.7:1")),
            Err(Refusal::NotLoopback)
        );
        assert_eq!(
            auth.admit(None, Connection::default()),
            Err(Refusal::NotLoopback)
        );
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"abcabc", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn an_empty_token_file_is_an_error_naming_the_file() {
        let path = std::env::temp_dir().join(format!("sv-empty-token-{}", std::process::id()));
        std::fs::write(&path, "  \n").expect("write");
        if std::env::var(TOKEN_ENV).is_err() {
            let error = AdminAuth::load(Some(&path)).expect_err("empty");
            assert!(error.to_string().contains("is empty"), "{error}");
            let missing = AdminAuth::load(Some(Path::new("/no/such/token"))).expect_err("missing");
            assert!(missing.to_string().contains("/no/such/token"), "{missing}");
        }
        let _ = std::fs::remove_file(path);
    }
}
