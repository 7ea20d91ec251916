//! An HTTP/1.x response head (status line and headers), parsed with `httparse`, the parser
//! hyper uses.
//!
//! The bytes come from an untrusted server, so nothing here trusts them: the head is parsed
//! only as far as it is complete (`Ok(None)` asks for more bytes), header names must be HTTP
//! tokens, values are taken byte for byte (bytes above 0x7f become the Latin-1 characters
//! they stand for, as `http.client` reads them; `httparse` trims the blanks around them), and at most
//! [`MAX_HEADERS`] headers are accepted. The caller bounds how many bytes it reads.

use thiserror::Error;

/// More headers than this make the head malformed (a registry sends a dozen).
pub const MAX_HEADERS: usize = 128;

/// A complete response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The minor version of `HTTP/1.x`.
    pub minor_version: u8,
    /// The status code.
    pub status: u16,
    /// `(name, value)` in the order received; names as sent (compare them case-insensitively).
    pub headers: Vec<(String, String)>,
    /// The length of the head in bytes, including the blank line that ends it.
    pub length: usize,
}

/// Why a response head is not valid HTTP/1.x.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("malformed HTTP response head: {0}")]
pub struct HeadError(httparse::Error);

/// Parses the response head at the start of `data`; `Ok(None)` while it is incomplete.
pub fn parse_response_head(data: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(data).map_err(HeadError)? {
        httparse::Status::Complete(length) => length,
        httparse::Status::Partial => return Ok(None),
    };
    let (Some(minor_version), Some(status)) = (response.version, response.code) else {
        return Ok(None); // unreachable for a complete head; treated as "not yet"
    };
    let headers = response
        .headers
        .iter()
        .map(|header| (header.name.to_owned(), latin1(header.value)))
        .collect();
    Ok(Some(ResponseHead {
        minor_version,
        status,
        headers,
        length,
    }))
}

fn latin1(value: &[u8]) -> String {
    value.iter().map(|&byte| char::from(byte)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(data: &[u8]) -> ResponseHead {
        parse_response_head(data).unwrap().unwrap()
    }

    #[test]
    fn a_registry_head() {
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 528\r\n\
            Docker-Content-Digest: sha256:abc\r\ncontent-type:application/json \r\n\r\nBODY";
        let head = parsed(data);
        assert_eq!((head.minor_version, head.status), (1, 200));
        assert_eq!(
            head.headers,
            vec![
                ("Content-Length".to_owned(), "528".to_owned()),
                ("Docker-Content-Digest".to_owned(), "sha256:abc".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
        assert_eq!(head.length, data.len() - 4);
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        let data = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n";
        for end in 0..data.len() {
            assert_eq!(parse_response_head(&data[..end]), Ok(None), "{end}");
        }
        assert_eq!(parsed(data).status, 404);
    }

    #[test]
    fn repeated_headers_are_all_kept_in_order() {
        let head = parsed(
            b"HTTP/1.0 401 No\r\nWWW-Authenticate: Basic\r\nwww-authenticate: Bearer\r\n\r\n",
        );
        assert_eq!(head.minor_version, 0);
        let values: Vec<&str> = head.headers.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["Basic", "Bearer"]);
    }

    #[test]
    fn high_bytes_become_latin1_characters() {
        let head = parsed(b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\n\r\n");
        assert_eq!(head.headers[0].1, "caf\u{e9}");
    }

    #[test]
    fn garbage_and_bad_heads_are_errors() {
        for data in [
            &b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..],
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        ] {
            assert!(
                parse_response_head(data).is_err(),
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn too_many_headers_is_an_error() {
        let mut data = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            data.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        data.extend_from_slice(b"\r\n");
        assert!(parse_response_head(&data).is_err());
        let fits = parse_response_head(&data[..data.len() - 9]);
        assert!(matches!(fits, Ok(None)), "{fits:?}");
    }
}
