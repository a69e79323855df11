//! Request logic of the static file server (`centos/httpd`, `httpd`, `nginx`): std only, so it
//! runs and is unit-tested on the host. `main.rs` only adapts it to `wasi:http`.
//!
//! GET and HEAD serve files under the document root; a directory serves its `index.html`, or
//! else an HTML listing; a directory named without a trailing slash is redirected (301) to the
//! name with the slash, as Apache and nginx do, so relative links resolve.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Document roots tried, in order, when `DOCUMENT_ROOT` is not set (centos/httpd, nginx,
/// the official httpd image).
pub const DEFAULT_ROOTS: &[&str] = &["/var/www/html", "/usr/share/nginx/html", "/usr/local/apache2/htdocs"];

/// `DOCUMENT_ROOT` if set and not empty, else the first of [`DEFAULT_ROOTS`] that `exists`,
/// else the first of them (every request then gets 404).
pub fn document_root(env_value: Option<&str>, exists: impl Fn(&Path) -> bool) -> PathBuf {
    if let Some(root) = env_value.filter(|v| !v.is_empty()) {
        return PathBuf::from(root);
    }
    DEFAULT_ROOTS
        .iter()
        .map(Path::new)
        .find(|p| exists(p))
        .unwrap_or(Path::new(DEFAULT_ROOTS[0]))
        .to_path_buf()
}

/// Why a request path is refused with 400.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// A `%` not followed by two hex digits, or a segment that is not UTF-8 once decoded.
    BadEncoding,
    /// A `..` segment (also when written `%2e%2e`).
    DotDot,
    /// A decoded segment containing `/` (`%2f`) or NUL.
    BadSegment,
}

impl PathError {
    pub fn message(&self) -> &'static str {
        match self {
            PathError::BadEncoding => "bad percent-encoding in the request path",
            PathError::DotDot => "'..' is not allowed in the request path",
            PathError::BadSegment => "encoded '/' or NUL is not allowed in the request path",
        }
    }
}

/// Decodes `%XX` escapes (`+` stays a `+`: this is a path, not a form).
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Encodes everything except unreserved characters (for `href`s and `Location`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The path part of a request target (query and fragment dropped).
pub fn path_part(path_with_query: &str) -> &str {
    let end = path_with_query.find(['?', '#']).unwrap_or(path_with_query.len());
    &path_with_query[..end]
}

/// The decoded segments of a request path: empty and `.` segments are dropped, `..` is refused.
pub fn segments(path_with_query: &str) -> Result<Vec<String>, PathError> {
    let mut out = Vec::new();
    for raw in path_part(path_with_query).split('/') {
        let bytes = percent_decode(raw).ok_or(PathError::BadEncoding)?;
        let seg = String::from_utf8(bytes).map_err(|_| PathError::BadEncoding)?;
        match seg.as_str() {
            "" | "." => {}
            ".." => return Err(PathError::DotDot),
            s if s.contains(['/', '\0']) => return Err(PathError::BadSegment),
            _ => out.push(seg),
        }
    }
    Ok(out)
}

/// Content-Type by file extension (case-insensitive).
pub fn content_type(file_name: &str) -> &'static str {
    let ext = match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    };
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML directory listing. `dir` is the decoded URL path of the directory (ending in `/`);
/// `entries` are (name, is_directory), listed in the given order.
pub fn listing_html(dir: &str, entries: &[(String, bool)]) -> String {
    let title = html_escape(dir);
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
         <body>\n<h1>Index of {title}</h1>\n<ul>\n"
    );
    if dir != "/" {
        out.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir) in entries {
        let slash = if *is_dir { "/" } else { "" };
        let _ = writeln!(
            out,
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>",
            percent_encode(name),
            html_escape(name)
        );
    }
    out.push_str("</ul>\n</body>\n</html>\n");
    out
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    File(File),
}

/// What to answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra headers (`location`, `allow`).
    pub headers: Vec<(&'static str, String)>,
    pub content_length: u64,
    pub body: Body,
}

impl Reply {
    fn bytes(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            content_length: body.len() as u64,
            body: Body::Bytes(body),
        }
    }

    fn text(status: u16, text: String) -> Reply {
        Reply::bytes(status, "text/plain; charset=utf-8", text.into_bytes())
    }

    /// The body as bytes (reads a file body); for tests.
    pub fn body_bytes(self) -> io::Result<Vec<u8>> {
        match self.body {
            Body::Bytes(b) => Ok(b),
            Body::File(mut f) => {
                let mut v = Vec::new();
                io::Read::read_to_end(&mut f, &mut v)?;
                Ok(v)
            }
        }
    }
}

/// Answers one request. `method` is the upper-case method name; HEAD gets the same reply as
/// GET (the caller leaves the body out).
pub fn respond(root: &Path, method: &str, path_with_query: &str) -> Reply {
    if method != "GET" && method != "HEAD" {
        let mut reply = Reply::text(405, format!("405 method not allowed: {method}\n"));
        reply.headers.push(("allow", "GET, HEAD".into()));
        return reply;
    }
    let segs = match segments(path_with_query) {
        Ok(s) => s,
        Err(e) => return Reply::text(400, format!("400 bad request: {}\n", e.message())),
    };
    let url_path = format!("/{}", segs.join("/"));
    let mut file = root.to_path_buf();
    file.extend(&segs);
    let meta = match fs::metadata(&file) {
        Ok(m) => m,
        Err(e) => return fs_error(&e, &url_path),
    };
    if meta.is_dir() {
        let raw = path_part(path_with_query);
        if !raw.ends_with('/') {
            let query = &path_with_query[raw.len()..];
            let location = format!("{}/{query}", if raw.is_empty() { "" } else { raw });
            let mut reply = Reply::text(301, format!("301 moved permanently: {location}\n"));
            reply.headers.push(("location", location));
            return reply;
        }
        let index = file.join("index.html");
        if index.is_file() {
            return serve_file(&index, "index.html");
        }
        let dir = if segs.is_empty() {
            "/".to_string()
        } else {
            format!("{url_path}/")
        };
        return match list_dir(&file) {
            Ok(entries) => Reply::bytes(
                200,
                "text/html; charset=utf-8",
                listing_html(&dir, &entries).into_bytes(),
            ),
            Err(e) => fs_error(&e, &url_path),
        };
    }
    if !meta.is_file() {
        return Reply::text(404, format!("404 not found: {url_path}\n"));
    }
    serve_file(&file, segs.last().map_or("", String::as_str))
}

fn serve_file(path: &Path, name: &str) -> Reply {
    let opened = File::open(path).and_then(|f| f.metadata().map(|m| (f, m.len())));
    match opened {
        Ok((f, len)) => Reply {
            status: 200,
            content_type: content_type(name),
            headers: Vec::new(),
            content_length: len,
            body: Body::File(f),
        },
        Err(e) => fs_error(&e, &path.display().to_string()),
    }
}

fn fs_error(e: &io::Error, what: &str) -> Reply {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Reply::text(404, format!("404 not found: {what}\n")),
        io::ErrorKind::PermissionDenied => Reply::text(403, format!("403 forbidden: {what}\n")),
        _ => Reply::text(500, format!("500 cannot read {what}: {e}\n")),
    }
}

/// Directory entries as (name, is_directory), sorted by name.
pub fn list_dir(dir: &Path) -> io::Result<Vec<(String, bool)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Follow symlinks, as a listing link would.
        let is_dir = fs::metadata(entry.path()).map(|m| m.is_dir()).unwrap_or(false);
        entries.push((name, is_dir));
    }
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%20b").unwrap(), b"a b");
        assert_eq!(percent_decode("%e2%82%AC+").unwrap(), "€+".as_bytes());
        assert_eq!(percent_decode("plain").unwrap(), b"plain");
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%"), None);
    }

    #[test]
    fn splits_and_checks_segments() {
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
        assert_eq!(segments("").unwrap(), Vec::<String>::new());
        assert_eq!(segments("/a//b/./c.html?x=1#f").unwrap(), ["a", "b", "c.html"]);
        assert_eq!(segments("/my%20file.txt").unwrap(), ["my file.txt"]);
        assert_eq!(segments("/a/../etc/passwd"), Err(PathError::DotDot));
        assert_eq!(segments("/a/%2e%2E/b"), Err(PathError::DotDot));
        assert_eq!(segments("/..").unwrap_err(), PathError::DotDot);
        assert_eq!(segments("/a%2fb"), Err(PathError::BadSegment));
        assert_eq!(segments("/a%00"), Err(PathError::BadSegment));
        assert_eq!(segments("/%ff"), Err(PathError::BadEncoding));
        assert_eq!(segments("/%4"), Err(PathError::BadEncoding));
        // `..` inside a name is fine; only a whole segment is refused.
        assert_eq!(segments("/a..b/..c").unwrap(), ["a..b", "..c"]);
        // The query is not part of the path.
        assert_eq!(segments("/x?p=../y").unwrap(), ["x"]);
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("INDEX.HTM"), "text/html; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("data.json"), "application/json");
        assert_eq!(content_type("notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("a.png"), "image/png");
        assert_eq!(content_type("a.JPG"), "image/jpeg");
        assert_eq!(content_type("a.jpeg"), "image/jpeg");
        assert_eq!(content_type("logo.svg"), "image/svg+xml");
        assert_eq!(content_type("m.wasm"), "application/wasm");
        assert_eq!(content_type("archive.tar.gz"), "application/octet-stream");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
        assert_eq!(content_type(".html"), "application/octet-stream");
    }

    #[test]
    fn picks_the_document_root() {
        assert_eq!(document_root(Some("/srv"), |_| false), Path::new("/srv"));
        assert_eq!(document_root(Some(""), |_| false), Path::new("/var/www/html"));
        assert_eq!(
            document_root(None, |p| p == Path::new("/usr/share/nginx/html")),
            Path::new("/usr/share/nginx/html")
        );
        assert_eq!(
            document_root(None, |p| p != Path::new("/var/www/html")),
            Path::new("/usr/share/nginx/html")
        );
        assert_eq!(document_root(None, |_| true), Path::new("/var/www/html"));
        assert_eq!(
            document_root(None, |p| p == Path::new("/usr/local/apache2/htdocs")),
            Path::new("/usr/local/apache2/htdocs")
        );
    }

    #[test]
    fn lists_a_directory() {
        let html = listing_html("/docs/", &[("a b.txt".into(), false), ("<sub>".into(), true)]);
        assert!(html.contains("<title>Index of /docs/</title>"), "{html}");
        assert!(html.contains("<a href=\"../\">../</a>"), "{html}");
        assert!(html.contains("<a href=\"a%20b.txt\">a b.txt</a>"), "{html}");
        assert!(html.contains("<a href=\"%3Csub%3E/\">&lt;sub&gt;/</a>"), "{html}");
        let root = listing_html("/", &[]);
        assert!(!root.contains("../"), "{root}");
    }

    /// A fresh directory under the system temp dir.
    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("capstan-httpd-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn serves_files_indexes_listings_and_errors() {
        let root = temp_root("serve");
        fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
        fs::write(root.join("my file.css"), "body{}").unwrap();
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::write(root.join("sub/x.json"), "{}").unwrap();

        let r = respond(&root, "GET", "/");
        assert_eq!(
            (r.status, r.content_type, r.content_length),
            (200, "text/html; charset=utf-8", 13)
        );
        assert_eq!(r.body_bytes().unwrap(), b"<h1>home</h1>");

        let r = respond(&root, "HEAD", "/my%20file.css?v=2");
        assert_eq!(
            (r.status, r.content_type, r.content_length),
            (200, "text/css; charset=utf-8", 6)
        );

        let r = respond(&root, "GET", "/sub/");
        assert_eq!(r.status, 200);
        let html = String::from_utf8(r.body_bytes().unwrap()).unwrap();
        assert!(html.contains("Index of /sub/"), "{html}");
        assert!(html.contains("<a href=\"deeper/\">deeper/</a>"), "{html}");
        assert!(html.contains("<a href=\"x.json\">x.json</a>"), "{html}");
        assert!(
            html.find("deeper/").unwrap() < html.find("x.json").unwrap(),
            "sorted: {html}"
        );

        let r = respond(&root, "GET", "/sub?a=1");
        assert_eq!(r.status, 301);
        assert_eq!(r.headers, [("location", "/sub/?a=1".to_string())]);

        assert_eq!(respond(&root, "GET", "/missing.html").status, 404);
        assert_eq!(respond(&root, "GET", "/index.html/x").status, 404);
        assert_eq!(respond(&root, "GET", "/sub/../index.html").status, 400);
        assert_eq!(respond(&root, "GET", "/%zz").status, 400);
        let r = respond(&root, "POST", "/");
        assert_eq!(r.status, 405);
        assert_eq!(r.headers, [("allow", "GET, HEAD".to_string())]);
        assert_eq!(respond(&root.join("nope"), "GET", "/").status, 404);

        fs::remove_dir_all(&root).unwrap();
    }
}
