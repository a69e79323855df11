//! Routing, log-line and URL logic of `random-generator-log-ambassador` (std only, tested on the
//! host). `main.rs` only adapts it to `wasi:http`.

/// The largest request body accepted (larger ones get 413).
pub const MAX_BODY: usize = 1 << 20;

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// POST (any path): log the body, answer 202 `{"status":"logged"}`.
    Log,
    /// GET or HEAD `/`: a short text.
    Info,
    /// GET or HEAD of another path.
    NotFound,
    /// Any other method.
    MethodNotAllowed,
}

/// `method` is the upper-case method name, `target` the request's path with query.
pub fn route(method: &str, target: &str) -> Route {
    let path = target.split(['?', '#']).next().unwrap_or("");
    match method {
        "POST" => Route::Log,
        "GET" | "HEAD" if path == "/" || path.is_empty() => Route::Info,
        "GET" | "HEAD" => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

/// A request body as one line of text: JSON (starting with `{` or `[`) loses its insignificant
/// whitespace; other text gets every control character (newlines included) replaced by a space.
/// Either way the result is trimmed. Invalid UTF-8 is replaced by U+FFFD.
pub fn one_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let control = |c: char| c.is_control();
    if !text.starts_with(['{', '[']) {
        return text.replace(control, " ").trim().to_string();
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(if control(c) { ' ' } else { c });
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(if control(c) { ' ' } else { c });
        }
    }
    out
}

/// Where to forward: (https?, authority, path with query).
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub authority: String,
    pub path_with_query: String,
}

/// Splits an `http://` or `https://` URL.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let url = url.trim();
    let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(format!("{url:?} does not start with http:// or https://"));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let path_with_query = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    Ok(Target {
        https,
        authority: authority.to_string(),
        path_with_query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("POST", "/"), Route::Log);
        assert_eq!(route("POST", "/anything?x"), Route::Log);
        assert_eq!(route("GET", "/"), Route::Info);
        assert_eq!(route("HEAD", "/?q=1"), Route::Info);
        assert_eq!(route("GET", "/other"), Route::NotFound);
        assert_eq!(route("PUT", "/"), Route::MethodNotAllowed);
        assert_eq!(route("DELETE", "/x"), Route::MethodNotAllowed);
    }

    #[test]
    fn compacts_json_to_one_line() {
        let body =
            b"{\n  \"random\": 42,\n  \"id\" : \"a b\\\" c\",\n  \"duration\": 12,\n  \"time\": 1700000000000\n}\n";
        assert_eq!(
            one_line(body),
            r#"{"random":42,"id":"a b\" c","duration":12,"time":1700000000000}"#
        );
        assert_eq!(one_line(br#"{"random":1,"id":"x"}"#), r#"{"random":1,"id":"x"}"#);
        assert_eq!(one_line(b" [1, 2,\t3] "), "[1,2,3]");
        // A raw newline inside a string (invalid JSON) still cannot break the line.
        assert_eq!(one_line(b"{\"a\":\"x\ny\"}"), "{\"a\":\"x y\"}");
        assert_eq!(one_line(b"{\"a\":\"\\\\\" , \"b\" : 1}"), "{\"a\":\"\\\\\",\"b\":1}");
    }

    #[test]
    fn flattens_other_text() {
        assert_eq!(one_line(b"hello\r\nworld\n"), "hello  world");
        assert_eq!(one_line(b"  plain text  "), "plain text");
        assert_eq!(one_line(b""), "");
        assert_eq!(one_line(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("http://localhost:9010").unwrap(),
            Target {
                https: false,
                authority: "localhost:9010".into(),
                path_with_query: "/".into()
            }
        );
        assert_eq!(
            parse_url("https://logs.example.com/ingest?src=rg").unwrap(),
            Target {
                https: true,
                authority: "logs.example.com".into(),
                path_with_query: "/ingest?src=rg".into()
            }
        );
        assert_eq!(parse_url("http://h?x=1").unwrap().path_with_query, "/?x=1");
        assert!(parse_url("ftp://h/").is_err());
        assert!(parse_url("http:///path").is_err());
        assert!(parse_url("localhost:9009").is_err());
    }
}
