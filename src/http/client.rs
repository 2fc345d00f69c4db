//! The client side of the HTTP interface, for `streamvisor actors` and `streamvisor kill` (and
//! the tests that drive a running program): one HTTP/1.1 request over a plain TCP connection (the
//! admin listener is local or behind a token; no TLS), with the token from
//! `STREAMVISOR_ADMIN_TOKEN` when it is set.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use thiserror::Error;

/// How long connecting, sending and reading may each take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// The admin request could not be made.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Nothing answered at the address.
    #[error("cannot reach streamvisor at {address}: {source} (is `streamvisor run` up, with --http {address}?)")]
    Connect {
        /// The address.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The exchange broke off.
    #[error("talking to {address}: {source}")]
    Io {
        /// The address.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The answer is not HTTP.
    #[error("{address} did not answer with HTTP")]
    NotHttp {
        /// The address.
        address: String,
    },
}

/// An HTTP answer.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

/// Sends `method path` (with a JSON `body`) to `address` and reads the whole answer.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        address: address.to_owned(),
        source,
    };
    let target = address
        .to_socket_addrs()
        .map_err(|source| ClientError::Connect {
            address: address.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| ClientError::Connect {
            address: address.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })?;
    let mut stream =
        TcpStream::connect_timeout(&target, IO_TIMEOUT).map_err(|source| ClientError::Connect {
            address: address.to_owned(),
            source,
        })?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Ok(token) = std::env::var(super::TOKEN_ENV) {
        head.push_str(&format!("Authorization: Bearer {}\r\n", token.trim()));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut answer)
        .map_err(io)?;
    parse(&answer).ok_or_else(|| ClientError::NotHttp {
        address: address.to_owned(),
    })
}

/// Splits an HTTP/1.1 answer (`Connection: close`, plain or chunked body), on bytes: a chunk's
/// size counts bytes, whatever the text.
fn parse(answer: &[u8]) -> Option<Response> {
    let split = answer.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let body = &answer[split + 4..];
    let status = head
        .lines()
        .next()?
        .strip_prefix("HTTP/1.")?
        .get(2..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|window| window == b"\r\n")?;
        let size = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        let rest = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let plain = parse(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}").expect("http");
        assert_eq!((plain.status, plain.body.as_str()), (404, "{}"));
        let chunked = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .expect("http");
        assert_eq!((chunked.status, chunked.body.as_str()), (200, "abcde"));
        assert!(parse(b"SSH-2.0-OpenSSH\r\n").is_none());
        // A chunk boundary inside a two-byte character.
        let split = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\xc3\r\n1\r\n\xa9\r\n0\r\n\r\n",
        )
        .expect("http");
        assert_eq!(split.body, "\u{e9}");
    }
}
