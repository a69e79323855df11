//! The applets. Each gets its argv (argv[0] = applet name) and a [`Ctx`], writes to the
//! streams in the context and returns its exit status. Errors go to stderr as
//! `APPLET: message`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::date::Utc;
use crate::io::{describe, Ctx};
use crate::shell;
use crate::test_cmd::test_applet;

pub type Applet = fn(&[String], &mut Ctx) -> i32;

const APPLETS: &[(&str, Applet)] = &[
    ("[", test_applet),
    ("cat", cat),
    ("cp", cp),
    ("date", date),
    ("echo", echo),
    ("env", env),
    ("false", |_, _| 1),
    ("ls", ls),
    ("mkdir", mkdir),
    ("pwd", pwd),
    ("rm", rm),
    ("sh", shell::sh_applet),
    ("sleep", sleep),
    ("stat", stat),
    ("test", test_applet),
    ("touch", touch),
    ("true", |_, _| 0),
    ("wc", wc),
];

/// The applet called `name`.
pub fn find(name: &str) -> Option<Applet> {
    APPLETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// Dispatches on the basename of argv[0] (`sh`, `/bin/stat`), `busybox APPLET ARGS...`, or
/// (argv[0] unknown) the first argument.
pub fn run_multicall(args: &[String], ctx: &mut Ctx) -> i32 {
    // `sh.wasm` (as `wasmtime run` passes it) counts as `sh`.
    let argv0 = args.first().map_or("", |s| {
        let base = basename(s);
        base.strip_suffix(".wasm").unwrap_or(base)
    });
    if let Some(applet) = find(argv0) {
        let mut argv = args.to_vec();
        argv[0] = argv0.to_string();
        return applet(&argv, ctx);
    }
    match args.get(1).map(String::as_str) {
        None | Some("--help") | Some("--list") => {
            let mut out = ctx.io.stdout.clone();
            if args.get(1).is_none_or(|a| a == "--help") {
                let _ = writeln!(out, "usage: busybox APPLET [ARGS...]\napplets:");
            }
            for (name, _) in APPLETS {
                let _ = writeln!(out, "{name}");
            }
            i32::from(args.len() < 2 && argv0 != "busybox")
        }
        Some(name) => {
            let base = basename(name);
            if base == "busybox" {
                // `busybox busybox APPLET ...` (argv[0] was something else, e.g. `busybox.wasm`)
                return run_multicall(&args[1..], ctx);
            }
            match find(base) {
                Some(applet) => {
                    let mut argv = args[1..].to_vec();
                    argv[0] = base.to_string();
                    applet(&argv, ctx)
                }
                None => {
                    ctx.error("busybox", format!("applet not found: {name}"));
                    127
                }
            }
        }
    }
}

/// Leading options (`-abc`, until `--` or the first operand): the flags seen and the operands.
/// An unknown flag is reported as `APPLET: invalid option -- 'x'` and gives `Err(1)`.
fn options<'a>(
    args: &'a [String],
    allowed: &str,
    ctx: &mut Ctx,
) -> Result<(String, &'a [String]), i32> {
    let mut flags = String::new();
    let mut i = 1;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        if a.len() < 2 || !a.starts_with('-') {
            break;
        }
        for c in a[1..].chars() {
            if !allowed.contains(c) {
                ctx.error(&args[0], format!("invalid option -- '{c}'"));
                return Err(1);
            }
            flags.push(c);
        }
        i += 1;
    }
    Ok((flags, &args[i.min(args.len())..]))
}

fn cat(args: &[String], ctx: &mut Ctx) -> i32 {
    let (_, operands) = match options(args, "u", ctx) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let mut out = ctx.io.stdout.clone();
    if operands.is_empty() {
        let mut stdin = ctx.io.stdin.clone();
        return match io::copy(&mut stdin, &mut out) {
            Ok(_) => 0,
            Err(e) => {
                ctx.error("cat", describe(&e));
                1
            }
        };
    }
    let mut status = 0;
    for name in operands {
        let copied = if name == "-" {
            let mut stdin = ctx.io.stdin.clone();
            io::copy(&mut stdin, &mut out)
        } else {
            fs::File::open(ctx.path(name)).and_then(|mut f| io::copy(&mut f, &mut out))
        };
        if let Err(e) = copied {
            ctx.error("cat", format!("{name}: {}", describe(&e)));
            status = 1;
        }
    }
    status
}

fn cp(args: &[String], ctx: &mut Ctx) -> i32 {
    let (flags, operands) = match options(args, "rRfpa", ctx) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let recursive = flags.contains(['r', 'R', 'a']);
    let Some((dest, sources)) = operands.split_last().filter(|(_, s)| !s.is_empty()) else {
        ctx.error("cp", "missing file operand");
        return 1;
    };
    let dest_path = ctx.path(dest);
    let dest_is_dir = dest_path.is_dir();
    if sources.len() > 1 && !dest_is_dir {
        ctx.error("cp", format!("target '{dest}' is not a directory"));
        return 1;
    }
    let mut status = 0;
    for src in sources {
        let src_path = ctx.path(src);
        let target = if dest_is_dir {
            dest_path.join(basename(src))
        } else {
            dest_path.clone()
        };
        let result = match fs::metadata(&src_path) {
            Err(e) => Err(format!("can't stat '{src}': {}", describe(&e))),
            Ok(m) if m.is_dir() && !recursive => Err(format!("omitting directory '{src}'")),
            Ok(m) if m.is_dir() => copy_dir(&src_path, &target).map_err(|e| describe(&e)),
            Ok(_) => fs::copy(&src_path, &target)
                .map(|_| ())
                .map_err(|e| format!("can't create '{}': {}", target.display(), describe(&e))),
        };
        if let Err(msg) = result {
            ctx.error("cp", msg);
            status = 1;
        }
    }
    status
}

fn copy_dir(src: &Path, dest: &Path) -> io::Result<()> {
    fs::create_dir_all(dest)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let target = dest.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn date(args: &[String], ctx: &mut Ctx) -> i32 {
    let mut time = Utc::now();
    let mut format: Option<String> = None;
    let mut i = 1;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-u" | "--utc" => {}
            "-I" => format = Some("%F".into()),
            "-R" => format = Some("%a, %d %b %Y %H:%M:%S +0000".into()),
            "-d" => {
                i += 1;
                match args
                    .get(i)
                    .and_then(|d| d.strip_prefix('@'))
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(secs) => time = Utc::from_unix(secs),
                    None => {
                        ctx.error("date", "only -d @SECONDS is supported");
                        return 1;
                    }
                }
            }
            f if f.starts_with('+') => format = Some(f[1..].to_string()),
            other => {
                ctx.error("date", format!("invalid argument '{other}'"));
                return 1;
            }
        }
        i += 1;
    }
    let text = match format {
        Some(f) => time.format(&f),
        None => time.default_format(),
    };
    let _ = writeln!(ctx.io.stdout, "{text}");
    0
}

fn echo(args: &[String], ctx: &mut Ctx) -> i32 {
    let mut newline = true;
    let mut escapes = false;
    let mut i = 1;
    while let Some(a) = args.get(i) {
        if a.len() < 2 || !a.starts_with('-') || !a[1..].chars().all(|c| "neE".contains(c)) {
            break;
        }
        for c in a[1..].chars() {
            match c {
                'n' => newline = false,
                'e' => escapes = true,
                _ => escapes = false,
            }
        }
        i += 1;
    }
    let mut text = args[i..].join(" ");
    if escapes {
        let (expanded, stop) = unescape(&text);
        text = expanded;
        if stop {
            newline = false;
        }
    }
    if newline {
        text.push('\n');
    }
    let _ = ctx.io.stdout.write_all(text.as_bytes());
    0
}

/// `echo -e` escapes; the flag says `\c` stopped the output.
fn unescape(s: &str) -> (String, bool) {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\x07'),
            Some('b') => out.push('\x08'),
            Some('f') => out.push('\x0c'),
            Some('v') => out.push('\x0b'),
            Some('e') => out.push('\x1b'),
            Some('\\') => out.push('\\'),
            Some('c') => return (out, true),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    (out, false)
}

fn env(args: &[String], ctx: &mut Ctx) -> i32 {
    let mut i = 1;
    let mut vars: BTreeMap<String, String> = if args.get(1).is_some_and(|a| a == "-i" || a == "-") {
        i = 2;
        BTreeMap::new()
    } else {
        ctx.vars.clone()
    };
    while let Some((name, value)) = args.get(i).and_then(|a| a.split_once('=')) {
        if !shell::parse::is_name(name) {
            break;
        }
        vars.insert(name.to_string(), value.to_string());
        i += 1;
    }
    let Some(cmd) = args.get(i) else {
        let mut out = ctx.io.stdout.clone();
        for (k, v) in &vars {
            let _ = writeln!(out, "{k}={v}");
        }
        return 0;
    };
    let base = basename(cmd);
    match find(base) {
        Some(applet) => {
            let mut argv = args[i..].to_vec();
            argv[0] = base.to_string();
            let mut sub = Ctx {
                io: ctx.io.clone(),
                vars: &vars,
                cwd: ctx.cwd,
            };
            applet(&argv, &mut sub)
        }
        None => {
            ctx.error("env", format!("'{cmd}': No such file or directory"));
            127
        }
    }
}

fn type_char(ft: fs::FileType) -> char {
    if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        '-'
    } else {
        '?'
    }
}

fn mtime(m: &fs::Metadata) -> String {
    m.modified()
        .map(|t| Utc::from_system(t).format("%Y-%m-%d %H:%M"))
        .unwrap_or_else(|_| "????-??-?? ??:??".into())
}

fn ls(args: &[String], ctx: &mut Ctx) -> i32 {
    let (flags, operands) = match options(args, "la1", ctx) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let long = flags.contains('l');
    let all = flags.contains('a');
    let default = [".".to_string()];
    let operands = if operands.is_empty() {
        &default[..]
    } else {
        operands
    };
    let mut out = ctx.io.stdout.clone();
    let mut status = 0;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for name in operands {
        match fs::metadata(ctx.path(name)) {
            Ok(m) if m.is_dir() => dirs.push(name.clone()),
            Ok(_) => files.push(name.clone()),
            Err(e) => {
                ctx.error("ls", format!("cannot access '{name}': {}", describe(&e)));
                status = 1;
            }
        }
    }
    files.sort();
    dirs.sort();
    let line = |out: &mut dyn Write, display: &str, path: &Path| {
        if !long {
            let _ = writeln!(out, "{display}");
            return;
        }
        match fs::symlink_metadata(path) {
            Ok(m) => {
                let mut text = format!(
                    "{} {:>10} {} {display}",
                    type_char(m.file_type()),
                    m.len(),
                    mtime(&m)
                );
                if m.file_type().is_symlink()
                    && let Ok(target) = fs::read_link(path) {
                        text.push_str(&format!(" -> {}", target.display()));
                    }
                let _ = writeln!(out, "{text}");
            }
            Err(_) => {
                let _ = writeln!(out, "? {:>10} ????-??-?? ??:?? {display}", "?");
            }
        }
    };
    for f in &files {
        line(&mut out, f, &ctx.path(f));
    }
    let headers = operands.len() > 1;
    for (i, d) in dirs.iter().enumerate() {
        if headers {
            if i > 0 || !files.is_empty() {
                let _ = writeln!(out);
            }
            let _ = writeln!(out, "{d}:");
        }
        let dir = ctx.path(d);
        let mut names: Vec<String> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| all || !n.starts_with('.'))
                .collect(),
            Err(e) => {
                ctx.error("ls", format!("cannot open directory '{d}': {}", describe(&e)));
                status = 1;
                continue;
            }
        };
        if all {
            names.push(".".into());
            names.push("..".into());
        }
        names.sort();
        for n in &names {
            line(&mut out, n, &dir.join(n));
        }
    }
    status
}

fn mkdir(args: &[String], ctx: &mut Ctx) -> i32 {
    let (flags, operands) = match options(args, "p", ctx) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if operands.is_empty() {
        ctx.error("mkdir", "missing operand");
        return 1;
    }
    let mut status = 0;
    for d in operands {
        let path = ctx.path(d);
        let made = if flags.contains('p') {
            fs::create_dir_all(&path)
        } else {
            fs::create_dir(&path)
        };
        if let Err(e) = made {
            ctx.error("mkdir", format!("can't create directory '{d}': {}", describe(&e)));
            status = 1;
        }
    }
    status
}

fn pwd(_args: &[String], ctx: &mut Ctx) -> i32 {
    let _ = writeln!(ctx.io.stdout, "{}", ctx.cwd.display());
    0
}

fn rm(args: &[String], ctx: &mut Ctx) -> i32 {
    let (flags, operands) = match options(args, "frR", ctx) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let force = flags.contains('f');
    let recursive = flags.contains(['r', 'R']);
    if operands.is_empty() && !force {
        ctx.error("rm", "missing operand");
        return 1;
    }
    let mut status = 0;
    for name in operands {
        let path = ctx.path(name);
        if path == Path::new("/") {
            ctx.error("rm", "refusing to remove '/'");
            status = 1;
            continue;
        }
        let result = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && force => Ok(()),
            Err(e) => Err(describe(&e)),
            Ok(m) if m.is_dir() && !recursive => Err("Is a directory".to_string()),
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path).map_err(|e| describe(&e)),
            Ok(_) => fs::remove_file(&path).map_err(|e| describe(&e)),
        };
        if let Err(msg) = result {
            ctx.error("rm", format!("can't remove '{name}': {msg}"));
            status = 1;
        }
    }
    status
}

/// `1.5`, `2s`, `3m`, `1h`, `1d`, `infinity`.
fn parse_interval(s: &str) -> Option<f64> {
    if s == "inf" || s == "infinity" {
        return Some(f64::INFINITY);
    }
    let (num, mult) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1.0),
        (i, 'm') => (&s[..i], 60.0),
        (i, 'h') => (&s[..i], 3600.0),
        (i, 'd') => (&s[..i], 86_400.0),
        _ => (s, 1.0),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    num.parse::<f64>().ok().map(|v| v * mult)
}

fn sleep(args: &[String], ctx: &mut Ctx) -> i32 {
    if args.len() < 2 {
        ctx.error("sleep", "missing operand");
        return 1;
    }
    let mut total = 0.0;
    for a in &args[1..] {
        match parse_interval(a) {
            Some(v) => total += v,
            None => {
                ctx.error("sleep", format!("invalid number '{a}'"));
                return 1;
            }
        }
    }
    let _ = ctx.io.stdout.flush();
    // std::thread::sleep is a wasi:io poll on a monotonic-clock pollable: the host can
    // cancel it. Sleep in slices so a stop request (crate::TERMINATION_SIGNAL) is seen.
    let mut left = Duration::try_from_secs_f64(total).unwrap_or(Duration::MAX);
    while !left.is_zero() {
        if crate::termination_requested() {
            return crate::TERMINATED_STATUS;
        }
        let slice = left.min(SLEEP_SLICE);
        std::thread::sleep(slice);
        left = left.saturating_sub(slice);
    }
    0
}

/// How often a sleeping busybox looks for a stop request.
const SLEEP_SLICE: Duration = Duration::from_millis(100);

fn stat(args: &[String], ctx: &mut Ctx) -> i32 {
    let (_, operands) = match options(args, "", ctx) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if operands.is_empty() {
        ctx.error("stat", "missing operand");
        return 1;
    }
    let mut out = ctx.io.stdout.clone();
    let mut status = 0;
    for name in operands {
        match fs::symlink_metadata(ctx.path(name)) {
            Ok(m) => {
                let ft = m.file_type();
                let kind = if ft.is_dir() {
                    "directory"
                } else if ft.is_symlink() {
                    "symbolic link"
                } else if ft.is_file() && m.len() == 0 {
                    "regular empty file"
                } else if ft.is_file() {
                    "regular file"
                } else {
                    "other"
                };
                let _ = writeln!(out, "  File: {name}\n  Size: {:<15} Type: {kind}", m.len());
                let _ = writeln!(
                    out,
                    "Modify: {}",
                    m.modified()
                        .map(|t| Utc::from_system(t).format("%Y-%m-%d %H:%M:%S UTC"))
                        .unwrap_or_else(|_| "-".into())
                );
            }
            Err(e) => {
                ctx.error("stat", format!("cannot stat '{name}': {}", describe(&e)));
                status = 1;
            }
        }
    }
    status
}

fn touch(args: &[String], ctx: &mut Ctx) -> i32 {
    let (flags, operands) = match options(args, "c", ctx) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if operands.is_empty() {
        ctx.error("touch", "missing operand");
        return 1;
    }
    let mut status = 0;
    for name in operands {
        let path = ctx.path(name);
        let opened = fs::OpenOptions::new()
            .append(true)
            .create(!flags.contains('c'))
            .open(&path);
        match opened {
            Ok(f) => {
                // Best effort: not every filesystem supports setting times.
                let _ = f.set_modified(SystemTime::now());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && flags.contains('c') => {}
            Err(e) => {
                ctx.error("touch", format!("{name}: {}", describe(&e)));
                status = 1;
            }
        }
    }
    status
}

#[derive(Default, Clone, Copy)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
}

fn count(r: &mut dyn Read) -> io::Result<Counts> {
    let mut c = Counts::default();
    let mut in_word = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(c);
        }
        c.bytes += n as u64;
        for &b in &buf[..n] {
            if b == b'\n' {
                c.lines += 1;
            }
            if b.is_ascii_whitespace() {
                in_word = false;
            } else if !in_word {
                in_word = true;
                c.words += 1;
            }
        }
    }
}

fn wc(args: &[String], ctx: &mut Ctx) -> i32 {
    let (mut flags, operands) = match options(args, "lwc", ctx) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if flags.is_empty() {
        flags = "lwc".into();
    }
    let columns: Vec<char> = ['l', 'w', 'c']
        .into_iter()
        .filter(|c| flags.contains(*c))
        .collect();
    let mut out = ctx.io.stdout.clone();
    let render = |out: &mut dyn Write, c: Counts, name: Option<&str>| {
        let values: Vec<String> = columns
            .iter()
            .map(|col| {
                let v = match col {
                    'l' => c.lines,
                    'w' => c.words,
                    _ => c.bytes,
                };
                if columns.len() > 1 {
                    format!("{v:>7}")
                } else {
                    v.to_string()
                }
            })
            .collect();
        let mut line = values.join(" ");
        if let Some(name) = name {
            line.push(' ');
            line.push_str(name);
        }
        let _ = writeln!(out, "{line}");
    };
    if operands.is_empty() {
        let mut stdin = ctx.io.stdin.clone();
        return match count(&mut stdin) {
            Ok(c) => {
                render(&mut out, c, None);
                0
            }
            Err(e) => {
                ctx.error("wc", describe(&e));
                1
            }
        };
    }
    let mut status = 0;
    let mut total = Counts::default();
    for name in operands {
        let counted = if name == "-" {
            let mut stdin = ctx.io.stdin.clone();
            count(&mut stdin)
        } else {
            fs::File::open(ctx.path(name)).and_then(|mut f| count(&mut f))
        };
        match counted {
            Ok(c) => {
                total.lines += c.lines;
                total.words += c.words;
                total.bytes += c.bytes;
                render(&mut out, c, Some(name));
            }
            Err(e) => {
                ctx.error("wc", format!("{name}: {}", describe(&e)));
                status = 1;
            }
        }
    }
    if operands.len() > 1 {
        render(&mut out, total, Some("total"));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Capture, TempDir};

    fn run_with(dir: &TempDir, stdin: &str, argv: &[&str]) -> (i32, String, String) {
        let cap = Capture::with_stdin(stdin);
        let mut vars = BTreeMap::new();
        vars.insert("FOO".to_string(), "bar".to_string());
        let mut ctx = Ctx {
            io: cap.io(),
            vars: &vars,
            cwd: dir.path(),
        };
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let status = run_multicall(&argv, &mut ctx);
        (status, cap.stdout(), cap.stderr())
    }

    fn run(dir: &TempDir, argv: &[&str]) -> (i32, String, String) {
        run_with(dir, "", argv)
    }

    #[test]
    fn dispatch() {
        let d = TempDir::new();
        assert_eq!(run(&d, &["echo", "a", "b"]).1, "a b\n");
        assert_eq!(run(&d, &["/bin/echo", "x"]).1, "x\n");
        assert_eq!(run(&d, &["busybox", "echo", "y"]).1, "y\n");
        assert_eq!(run(&d, &["/some/wrapper", "echo", "z"]).1, "z\n");
        assert_eq!(run(&d, &["busybox.wasm", "echo", "w"]).1, "w\n");
        assert_eq!(run(&d, &["busybox.wasm", "busybox", "echo", "u"]).1, "u\n");
        assert_eq!(run(&d, &["echo.wasm", "v"]).1, "v\n");
        assert_eq!(run(&d, &["/bin/sh", "-c", "echo $FOO"]).1, "bar\n");
        let (status, _, err) = run(&d, &["busybox", "frobnicate"]);
        assert_eq!(status, 127);
        assert_eq!(err, "busybox: applet not found: frobnicate\n");
        assert!(run(&d, &["busybox"]).1.contains("stat\n"));
    }

    #[test]
    fn stat_reports_missing_files() {
        let d = TempDir::new();
        fs::write(d.path().join("ready"), "").unwrap();
        let (status, out, err) = run(&d, &["stat", "ready"]);
        assert_eq!(status, 0, "{err}");
        assert!(out.starts_with("  File: ready\n  Size: 0"), "{out}");
        assert!(out.contains("Type: regular empty file"));
        let (status, _, err) = run(&d, &["stat", "/tmp/definitely-missing-file"]);
        assert_eq!(status, 1);
        assert_eq!(
            err,
            "stat: cannot stat '/tmp/definitely-missing-file': No such file or directory\n"
        );
    }

    #[test]
    fn cat_ls_wc() {
        let d = TempDir::new();
        fs::write(d.path().join("b.txt"), "two\nlines here\n").unwrap();
        fs::write(d.path().join("a.txt"), "x\n").unwrap();
        fs::write(d.path().join(".hidden"), "").unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        assert_eq!(run(&d, &["cat", "a.txt", "b.txt"]).1, "x\ntwo\nlines here\n");
        assert_eq!(run_with(&d, "from stdin", &["cat"]).1, "from stdin");
        assert_eq!(run_with(&d, "in", &["cat", "a.txt", "-"]).1, "x\nin");
        let (status, _, err) = run(&d, &["cat", "nope"]);
        assert_eq!((status, err.as_str()), (1, "cat: nope: No such file or directory\n"));
        assert_eq!(run(&d, &["ls"]).1, "a.txt\nb.txt\nsub\n");
        assert_eq!(run(&d, &["ls", "-a"]).1, ".\n..\n.hidden\na.txt\nb.txt\nsub\n");
        let long = run(&d, &["ls", "-l", "sub", "a.txt"]).1;
        assert!(long.starts_with("-          2 "), "{long}");
        assert!(long.ends_with(" a.txt\n\nsub:\n"), "{long}");
        assert_eq!(run(&d, &["ls", "-z"]).0, 1);
        assert_eq!(run(&d, &["wc", "-l", "b.txt"]).1, "2 b.txt\n");
        assert_eq!(run_with(&d, "a b\nc\n", &["wc", "-l"]).1, "2\n");
        assert_eq!(run_with(&d, "a b\nc\n", &["wc"]).1, "      2       3       6\n");
    }

    #[test]
    fn file_operations() {
        let d = TempDir::new();
        assert_eq!(run(&d, &["mkdir", "-p", "x/y/z"]).0, 0);
        assert!(d.path().join("x/y/z").is_dir());
        let (status, _, err) = run(&d, &["mkdir", "x"]);
        assert_eq!(status, 1);
        assert!(err.starts_with("mkdir: can't create directory 'x': "), "{err}");
        assert_eq!(run(&d, &["touch", "x/f"]).0, 0);
        assert!(d.path().join("x/f").is_file());
        fs::write(d.path().join("src"), "data").unwrap();
        assert_eq!(run(&d, &["cp", "src", "dst"]).0, 0);
        assert_eq!(fs::read_to_string(d.path().join("dst")).unwrap(), "data");
        assert_eq!(run(&d, &["cp", "src", "x"]).0, 0);
        assert_eq!(fs::read_to_string(d.path().join("x/src")).unwrap(), "data");
        assert_eq!(run(&d, &["cp", "x", "x2"]).2, "cp: omitting directory 'x'\n");
        assert_eq!(run(&d, &["cp", "-r", "x", "x2"]).0, 0);
        assert!(d.path().join("x2/y/z").is_dir());
        assert_eq!(run(&d, &["rm", "x"]).2, "rm: can't remove 'x': Is a directory\n");
        assert_eq!(run(&d, &["rm", "gone"]).0, 1);
        assert_eq!(run(&d, &["rm", "-f", "gone"]).0, 0);
        assert_eq!(run(&d, &["rm", "-rf", "x", "src"]).0, 0);
        assert!(!d.path().join("x").exists() && !d.path().join("src").exists());
    }

    #[test]
    fn echo_env_date_sleep() {
        let d = TempDir::new();
        assert_eq!(run(&d, &["echo", "-n", "a", "b"]).1, "a b");
        assert_eq!(run(&d, &["echo", "-e", "a\\tb\\c", "x"]).1, "a\tb");
        assert_eq!(run(&d, &["echo", "-x"]).1, "-x\n");
        assert_eq!(run(&d, &["env"]).1, "FOO=bar\n");
        assert_eq!(run(&d, &["env", "-i", "A=1", "env"]).1, "A=1\n");
        assert_eq!(run(&d, &["date", "-d", "@0"]).1, "Thu Jan  1 00:00:00 UTC 1970\n");
        assert_eq!(run(&d, &["date", "-u", "-d", "@86400", "+%F %s"]).1, "1970-01-02 86400\n");
        let now = run(&d, &["date"]).1;
        assert!(now.ends_with(&format!("UTC {}\n", Utc::now().year)), "{now}");
        let start = std::time::Instant::now();
        assert_eq!(run(&d, &["sleep", "0.05"]).0, 0);
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(run(&d, &["sleep", "abc"]).2, "sleep: invalid number 'abc'\n");
        assert_eq!(parse_interval("2m"), Some(120.0));
        assert_eq!(parse_interval("infinity"), Some(f64::INFINITY));
        assert_eq!(parse_interval("-1"), None);
    }
}
