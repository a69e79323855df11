//! A small POSIX-like shell interpreter. Every command runs in-process: builtins change the
//! interpreter's state, applets get the (possibly redirected) streams and return a status.

pub mod parse;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::PathBuf;

use crate::applets;
use crate::io::{describe, resolve, Ctx, Input, Io, Output};
use parse::{AndOr, Command, Connector, List, Param, ParseError, Part, RedirKind, Redirect, Word};

/// Exit status of a syntax error or unsupported construct.
pub const STATUS_SYNTAX: i32 = 2;
/// Exit status of an unknown command.
pub const STATUS_NOT_FOUND: i32 = 127;

/// What the rest of the script should do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next,
    Break,
    Continue,
    Exit(i32),
}

pub struct Shell {
    /// Shell variables; all of them are visible to applets (as their environment).
    pub vars: BTreeMap<String, String>,
    pub cwd: PathBuf,
    /// `$0`, `$1`, ...
    pub positional: Vec<String>,
    /// `$?`
    pub status: i32,
    loop_depth: usize,
}

impl Shell {
    pub fn new(vars: BTreeMap<String, String>, cwd: PathBuf, positional: Vec<String>) -> Self {
        Shell {
            vars,
            cwd,
            positional,
            status: 0,
            loop_depth: 0,
        }
    }

    /// Parses and runs `script`; returns the exit status. Nothing runs if parsing fails.
    pub fn run(&mut self, script: &str, io: &Io) -> i32 {
        let list = match parse::parse(script) {
            Ok(list) => list,
            Err(e) => {
                let mut stderr = io.stderr.clone();
                let _ = writeln!(stderr, "sh: {e}");
                return STATUS_SYNTAX;
            }
        };
        match self.list(&list, io) {
            Flow::Exit(code) => code,
            _ => self.status,
        }
    }

    /// Parses `script` without running it.
    pub fn check(script: &str) -> Result<(), ParseError> {
        parse::parse(script).map(|_| ())
    }

    fn list(&mut self, list: &List, io: &Io) -> Flow {
        for item in &list.0 {
            let flow = self.and_or(item, io);
            if flow != Flow::Next {
                return flow;
            }
        }
        Flow::Next
    }

    fn and_or(&mut self, item: &AndOr, io: &Io) -> Flow {
        let flow = self.pipeline(&item.first, io);
        if flow != Flow::Next {
            return flow;
        }
        for (connector, pipeline) in &item.rest {
            if (*connector == Connector::And) == (self.status == 0) {
                let flow = self.pipeline(pipeline, io);
                if flow != Flow::Next {
                    return flow;
                }
            }
        }
        Flow::Next
    }

    fn pipeline(&mut self, pipeline: &parse::Pipeline, io: &Io) -> Flow {
        let flow = self.command(&pipeline.command, io);
        if pipeline.negate {
            self.status = i32::from(self.status == 0);
        }
        flow
    }

    fn command(&mut self, command: &Command, io: &Io) -> Flow {
        match command {
            Command::Simple {
                assigns,
                words,
                redirects,
            } => self.simple(assigns, words, redirects, io),
            Command::While {
                until,
                cond,
                body,
                redirects,
            } => {
                let Some(io) = self.redirected(io, redirects) else {
                    return Flow::Next;
                };
                let mut last = 0;
                self.loop_depth += 1;
                let flow = loop {
                    if crate::termination_requested() {
                        break Flow::Exit(crate::TERMINATED_STATUS);
                    }
                    match self.list(cond, &io) {
                        Flow::Next | Flow::Continue => {}
                        Flow::Break => break Flow::Next,
                        exit => break exit,
                    }
                    if (self.status == 0) == *until {
                        break Flow::Next;
                    }
                    let flow = self.list(body, &io);
                    last = self.status;
                    match flow {
                        Flow::Next | Flow::Continue => {}
                        Flow::Break => break Flow::Next,
                        exit => break exit,
                    }
                };
                self.loop_depth -= 1;
                if flow == Flow::Next {
                    self.status = last;
                }
                flow
            }
            Command::If {
                branches,
                otherwise,
                redirects,
            } => {
                let Some(io) = self.redirected(io, redirects) else {
                    return Flow::Next;
                };
                for (cond, body) in branches {
                    let flow = self.list(cond, &io);
                    if flow != Flow::Next {
                        return flow;
                    }
                    if self.status == 0 {
                        return self.list(body, &io);
                    }
                }
                match otherwise {
                    Some(body) => self.list(body, &io),
                    None => {
                        self.status = 0;
                        Flow::Next
                    }
                }
            }
        }
    }

    fn simple(
        &mut self,
        assigns: &[(String, Word)],
        words: &[Word],
        redirects: &[Redirect],
        io: &Io,
    ) -> Flow {
        let argv: Vec<String> = words.iter().flat_map(|w| self.expand(w)).collect();
        let values: Vec<(String, String)> = assigns
            .iter()
            .map(|(name, w)| (name.clone(), self.expand_single(w)))
            .collect();
        let Some(io) = self.redirected(io, redirects) else {
            return Flow::Next;
        };
        if argv.is_empty() {
            self.vars.extend(values);
            self.status = 0;
            return Flow::Next;
        }
        // `NAME=value cmd`: the assignments hold for this command only.
        let saved: Vec<(String, Option<String>)> = values
            .iter()
            .map(|(name, _)| (name.clone(), self.vars.get(name).cloned()))
            .collect();
        self.vars.extend(values);
        let flow = self.execute(&argv, &io);
        for (name, old) in saved {
            match old {
                Some(v) => self.vars.insert(name, v),
                None => self.vars.remove(&name),
            };
        }
        flow
    }

    /// Runs a builtin or an applet.
    fn execute(&mut self, argv: &[String], io: &Io) -> Flow {
        let mut stderr = io.stderr.clone();
        let mut stdout = io.stdout.clone();
        let name = argv[0].as_str();
        let args = &argv[1..];
        match name {
            "exit" => {
                let code = match args.first() {
                    None => self.status,
                    Some(a) => match a.parse::<i32>() {
                        Ok(n) => n & 0xff,
                        Err(_) => {
                            let _ = writeln!(stderr, "sh: exit: Illegal number: {a}");
                            STATUS_SYNTAX
                        }
                    },
                };
                Flow::Exit(code)
            }
            "cd" => {
                let target = match args.first() {
                    Some(dir) => dir.clone(),
                    None => self.vars.get("HOME").cloned().unwrap_or_else(|| "/".into()),
                };
                let dir = resolve(&self.cwd, &target);
                self.status = match fs::metadata(&dir) {
                    Ok(m) if m.is_dir() => {
                        self.vars
                            .insert("PWD".into(), dir.to_string_lossy().into_owned());
                        self.cwd = dir;
                        0
                    }
                    Ok(_) => {
                        let _ = writeln!(stderr, "sh: cd: can't cd to {target}: Not a directory");
                        1
                    }
                    Err(e) => {
                        let _ = writeln!(stderr, "sh: cd: can't cd to {target}: {}", describe(&e));
                        1
                    }
                };
                Flow::Next
            }
            "pwd" => {
                let _ = writeln!(stdout, "{}", self.cwd.display());
                self.status = 0;
                Flow::Next
            }
            "export" => {
                self.status = 0;
                for a in args {
                    let (name, value) = match a.split_once('=') {
                        Some((n, v)) => (n, Some(v.to_string())),
                        None => (a.as_str(), None),
                    };
                    if !parse::is_name(name) {
                        let _ = writeln!(stderr, "sh: export: {name}: bad variable name");
                        self.status = 1;
                        continue;
                    }
                    let value = value
                        .or_else(|| self.vars.get(name).cloned())
                        .unwrap_or_default();
                    self.vars.insert(name.to_string(), value);
                }
                Flow::Next
            }
            "unset" => {
                for a in args {
                    self.vars.remove(a);
                }
                self.status = 0;
                Flow::Next
            }
            "break" | "continue" => {
                self.status = 0;
                match (self.loop_depth, name) {
                    (0, _) => Flow::Next,
                    (_, "break") => Flow::Break,
                    _ => Flow::Continue,
                }
            }
            "exec" => {
                if args.is_empty() {
                    self.status = 0;
                    return Flow::Next;
                }
                match self.execute(args, io) {
                    Flow::Exit(code) => Flow::Exit(code),
                    _ => Flow::Exit(self.status),
                }
            }
            ":" => {
                self.status = 0;
                Flow::Next
            }
            _ => {
                let base = name.rsplit('/').next().unwrap_or(name);
                match applets::find(base) {
                    Some(applet) => {
                        let mut argv = argv.to_vec();
                        argv[0] = base.to_string();
                        let mut ctx = Ctx {
                            io: io.clone(),
                            vars: &self.vars,
                            cwd: &self.cwd,
                        };
                        self.status = applet(&argv, &mut ctx);
                        let _ = stdout.flush();
                    }
                    None => {
                        let _ = writeln!(stderr, "sh: {name}: not found");
                        self.status = STATUS_NOT_FOUND;
                    }
                }
                Flow::Next
            }
        }
    }

    /// Applies redirections; on failure prints the error, sets status 1 and returns `None`.
    fn redirected(&mut self, io: &Io, redirects: &[Redirect]) -> Option<Io> {
        let mut io = io.clone();
        for r in redirects {
            let target = self.expand_single(&r.target);
            let path = resolve(&self.cwd, &target);
            // /dev/null works even where the host provides no /dev.
            if target == "/dev/null" && !matches!(r.kind, RedirKind::Dup(_)) {
                match (r.kind, r.fd) {
                    (RedirKind::In, _) => io.stdin = Input::new(std::io::empty()),
                    (_, 2) => io.stderr = Output::new(std::io::sink()),
                    _ => io.stdout = Output::new(std::io::sink()),
                }
                continue;
            }
            let opened = match r.kind {
                RedirKind::In => fs::File::open(&path).map(|f| io.stdin = Input::new(f)),
                RedirKind::Out | RedirKind::Append => fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .append(r.kind == RedirKind::Append)
                    .truncate(r.kind == RedirKind::Out)
                    .open(&path)
                    .map(|f| {
                        let out = Output::new(f);
                        if r.fd == 2 {
                            io.stderr = out;
                        } else {
                            io.stdout = out;
                        }
                    }),
                RedirKind::Dup(from) => {
                    let source = if from == 2 {
                        io.stderr.clone()
                    } else {
                        io.stdout.clone()
                    };
                    if r.fd == 2 {
                        io.stderr = source;
                    } else {
                        io.stdout = source;
                    }
                    Ok(())
                }
            };
            if let Err(e) = opened {
                let mut stderr = io.stderr.clone();
                let _ = writeln!(stderr, "sh: can't open {target}: {}", describe(&e));
                self.status = 1;
                return None;
            }
        }
        Some(io)
    }

    fn param(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.status.to_string()),
            "$" => Some("1".into()),
            "#" => Some(self.positional.len().saturating_sub(1).to_string()),
            "@" | "*" => Some(self.positional.get(1..).unwrap_or_default().join(" ")),
            n if n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse::<usize>().ok().and_then(|i| self.positional.get(i).cloned())
            }
            n => self.vars.get(n).cloned(),
        }
    }

    fn param_value(&self, p: &Param) -> String {
        let value = self.param(&p.name);
        let Some(op) = &p.op else {
            return value.unwrap_or_default();
        };
        let set = match &value {
            None => false,
            Some(v) => !(op.colon && v.is_empty()),
        };
        let word = || {
            self.expand_single(&Word {
                parts: op.word.clone(),
            })
        };
        match (op.alternative, set) {
            // `${X-word}`: the value if set, else the word
            (false, true) => value.unwrap_or_default(),
            (false, false) => word(),
            // `${X+word}`: the word if set, else nothing
            (true, true) => word(),
            (true, false) => String::new(),
        }
    }

    /// Expands a word into fields: unquoted expansions are split on whitespace.
    pub fn expand(&self, w: &Word) -> Vec<String> {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut have = false;
        for part in &w.parts {
            match part {
                Part::Lit { text, .. } => {
                    cur.push_str(text);
                    have = true;
                }
                Part::Param {
                    param,
                    quoted: true,
                } => {
                    cur.push_str(&self.param_value(param));
                    have = true;
                }
                Part::Param {
                    param,
                    quoted: false,
                } => {
                    for c in self.param_value(param).chars() {
                        if matches!(c, ' ' | '\t' | '\n') {
                            if have {
                                fields.push(std::mem::take(&mut cur));
                                have = false;
                            }
                        } else {
                            cur.push(c);
                            have = true;
                        }
                    }
                }
            }
        }
        if have {
            fields.push(cur);
        }
        fields
    }

    /// Expands a word without field splitting (assignments, redirection targets).
    pub fn expand_single(&self, w: &Word) -> String {
        let mut out = String::new();
        for part in &w.parts {
            match part {
                Part::Lit { text, .. } => out.push_str(text),
                Part::Param { param, .. } => out.push_str(&self.param_value(param)),
            }
        }
        out
    }
}

/// The `sh` applet: `sh -c 'LINE' [NAME [ARG...]]`, `sh FILE [ARG...]`, or `sh` (script on
/// stdin).
pub fn sh_applet(args: &[String], ctx: &mut Ctx) -> i32 {
    let (script, positional) = match args.get(1).map(String::as_str) {
        Some("-c") => {
            let Some(script) = args.get(2) else {
                ctx.error("sh", "-c requires an argument");
                return STATUS_SYNTAX;
            };
            let mut positional: Vec<String> = args[3..].to_vec();
            if positional.is_empty() {
                positional.push("sh".into());
            }
            (script.clone(), positional)
        }
        Some(opt) if opt.starts_with('-') && opt != "-" => {
            ctx.error("sh", format!("unsupported option {opt}"));
            return STATUS_SYNTAX;
        }
        Some(file) => match fs::read_to_string(ctx.path(file)) {
            Ok(script) => (script, args[1..].to_vec()),
            Err(e) => {
                ctx.error("sh", format!("can't open '{file}': {}", describe(&e)));
                return STATUS_NOT_FOUND;
            }
        },
        None => {
            let mut script = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut ctx.io.stdin, &mut script) {
                ctx.error("sh", format!("reading stdin: {}", describe(&e)));
                return 1;
            }
            (script, vec!["sh".into()])
        }
    };
    let mut shell = Shell::new(ctx.vars.clone(), ctx.cwd.to_path_buf(), positional);
    let status = shell.run(&script, &ctx.io);
    let _ = ctx.io.stdout.flush();
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Capture, TempDir};

    struct Run {
        status: i32,
        stdout: String,
        stderr: String,
    }

    fn run_in(dir: &TempDir, script: &str) -> Run {
        let mut vars = BTreeMap::new();
        vars.insert("HOME".to_string(), dir.path().display().to_string());
        vars.insert("GREETING".to_string(), "hello world".to_string());
        let cap = Capture::new();
        let mut shell = Shell::new(vars, dir.path().to_path_buf(), vec!["sh".into()]);
        let status = shell.run(script, &cap.io());
        Run {
            status,
            stdout: cap.stdout(),
            stderr: cap.stderr(),
        }
    }

    fn run(script: &str) -> Run {
        run_in(&TempDir::new(), script)
    }

    #[test]
    fn quoting() {
        let r = run(r#"echo 'a  b' "c  $GREETING" d\ \ e '$GREETING' "\$x \"q\"" a"b"'c'"#);
        assert_eq!(r.stdout, "a  b c  hello world d  e $GREETING $x \"q\" abc\n");
        assert_eq!(r.status, 0);
        // empty quoted words are kept, unquoted empty expansions vanish
        let r = run(r#"E=; test -z "" && echo one; test -z $E && echo two; echo [$E] "[$E]""#);
        assert_eq!(r.stdout, "one\ntwo\n[] []\n");
    }

    #[test]
    fn variables() {
        let r = run("A=1; B=\"$A two\"; echo $A ${B} ${UNSET:-dflt} ${A:+alt} ${UNSET+x}end; false; echo $?; true; echo $?");
        assert_eq!(r.stdout, "1 1 two dflt alt end\n1\n0\n");
        // unquoted expansions are split into fields, quoted ones are not
        let r = run(r#"test $GREETING = "hello world" || echo split; test "$GREETING" = "hello world" && echo whole"#);
        assert_eq!(r.stdout, "split\nwhole\n");
        assert!(r.stderr.is_empty() || r.stderr.contains("test"));
        // positional parameters
        let dir = TempDir::new();
        let cap = Capture::new();
        let mut shell = Shell::new(BTreeMap::new(), dir.path().to_path_buf(), vec!["name".into(), "x".into(), "y z".into()]);
        assert_eq!(shell.run("echo $0 $1 \"$2\" $#", &cap.io()), 0);
        assert_eq!(cap.stdout(), "name x y z 2\n");
    }

    #[test]
    fn and_or_lists() {
        let r = run("true && echo a; false && echo b; false || echo c; true || echo d; false && echo e || echo f; ! false && echo g");
        assert_eq!(r.stdout, "a\nc\nf\ng\n");
        let r = run("false\n");
        assert_eq!(r.status, 1);
        let r = run("echo x &&\n  echo y");
        assert_eq!(r.stdout, "x\ny\n");
    }

    #[test]
    fn redirection_to_files() {
        let dir = TempDir::new();
        let r = run_in(
            &dir,
            "echo one > out.txt; echo two >> out.txt; cat < out.txt; cat missing 2> err.txt || echo failed; \
             echo to-stderr 1>&2 2>/dev/null; cat missing > both.txt 2>&1",
        );
        assert_eq!(r.stdout, "one\ntwo\nfailed\n");
        assert_eq!(fs::read_to_string(dir.path().join("out.txt")).unwrap(), "one\ntwo\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("err.txt")).unwrap(),
            "cat: missing: No such file or directory\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("both.txt")).unwrap(),
            "cat: missing: No such file or directory\n"
        );
        assert_eq!(r.stderr, "to-stderr\n");
        // `>` truncates; absolute targets and expansions in targets work
        let abs = dir.path().join("abs.txt");
        let r = run_in(
            &dir,
            &format!("F={}; echo first > $F; echo second > \"$F\"; cat $F", abs.display()),
        );
        assert_eq!(r.stdout, "second\n");
        // a failing redirection skips the command and sets status 1
        let r = run_in(&dir, "echo x > no/such/dir/f; echo $?");
        assert_eq!(r.stdout, "1\n");
        assert!(r.stderr.starts_with("sh: can't open no/such/dir/f:"), "{}", r.stderr);
        // redirection of a whole loop
        let r = run_in(&dir, "while true; do echo looped; break; done > loop.txt; cat loop.txt");
        assert_eq!(r.stdout, "looped\n");
    }

    #[test]
    fn while_loop_with_exit() {
        let dir = TempDir::new();
        let r = run_in(
            &dir,
            "while true; do echo tick >> ticks; if test -f seen; then exit 3; fi; touch seen; done; echo unreachable",
        );
        assert_eq!(r.status, 3);
        assert_eq!(r.stdout, "");
        assert_eq!(fs::read_to_string(dir.path().join("ticks")).unwrap(), "tick\ntick\n");
        // condition-driven loop, until, break/continue
        let r = run_in(
            &dir,
            "while [ ! -e flag ]; do echo making; touch flag; done; until test -e flag; do echo never; done; \
             while true; do if [ -e flag ]; then rm flag; continue; fi; echo after; break; done; echo $?",
        );
        assert_eq!(r.stdout, "making\nafter\n0\n");
        // exit without argument uses the last status
        let r = run("false; exit");
        assert_eq!(r.status, 1);
        let r = run("exit 300");
        assert_eq!(r.status, 300 & 0xff);
    }

    #[test]
    fn if_else() {
        let r = run("if false; then echo a; elif true; then echo b; else echo c; fi; if false; then echo d; else echo e; fi; if false; then echo f; fi; echo $?");
        assert_eq!(r.stdout, "b\ne\n0\n");
        let r = run("if [ \"$GREETING\" = 'hello world' ]\nthen\n  echo yes\nfi");
        assert_eq!(r.stdout, "yes\n");
    }

    #[test]
    fn unsupported_constructs_run_nothing() {
        let dir = TempDir::new();
        for (script, name) in [
            ("touch ran; echo a | cat", "pipe"),
            ("touch ran; echo `date`", "backquote"),
            ("touch ran; echo $(date)", "command substitution"),
            ("touch ran; for i in 1 2; do echo $i; done", "for"),
            ("touch ran; case a in a) echo;; esac", "case"),
            ("touch ran; f() { echo; }", "function"),
            ("touch ran; ls *", "glob"),
            ("touch ran; sleep 10 &", "background"),
            ("touch ran; cat <<EOF", "heredoc"),
        ] {
            let r = run_in(&dir, script);
            assert_eq!(r.status, 2, "{script}");
            assert_eq!(r.stderr, format!("sh: unsupported construct: {name}\n"), "{script}");
            assert_eq!(r.stdout, "");
            assert!(!dir.path().join("ran").exists(), "{script} ran something");
        }
        let r = run_in(&dir, "touch ran; if true; then echo x");
        assert_eq!(r.status, 2);
        assert!(r.stderr.starts_with("sh: syntax error:"), "{}", r.stderr);
        assert!(!dir.path().join("ran").exists());
    }

    #[test]
    fn unknown_command() {
        let r = run("nosuchcmd a b; echo $?");
        assert_eq!(r.stderr, "sh: nosuchcmd: not found\n");
        assert_eq!(r.stdout, "127\n");
        let r = run("nosuchcmd");
        assert_eq!(r.status, 127);
    }

    #[test]
    fn builtins_and_environment() {
        let dir = TempDir::new();
        let r = run_in(
            &dir,
            "mkdir -p sub/deeper && cd sub && pwd && echo hi > f && cd .. && cat sub/f && cd nowhere; echo $?",
        );
        let sub = dir.path().join("sub");
        assert_eq!(r.stdout, format!("{}\nhi\n1\n", sub.display()));
        assert!(r.stderr.contains("sh: cd: can't cd to nowhere"));
        // assignments are visible to applets; prefix assignments only for that command
        let r = run("A=1; export B=2; C=3 env > /dev/null; C=3 env; echo \"[$C]\"; unset A; env");
        assert!(r.stdout.contains("A=1\n"));
        assert!(r.stdout.contains("B=2\n"));
        assert!(r.stdout.contains("C=3\n"));
        assert!(r.stdout.contains("[]\n"));
        let last_env = r.stdout.split("[]\n").nth(1).unwrap();
        assert!(!last_env.contains("A=1"));
        // nested sh: its exit does not end the outer shell
        let r = run("sh -c 'echo inner $0 $1; exit 4' name arg; echo outer $?");
        assert_eq!(r.stdout, "inner name arg\nouter 4\n");
        // exec ends the shell with the command's status
        let r = run("exec false; echo no");
        assert_eq!((r.status, r.stdout.as_str()), (1, ""));
        // applets by path
        let r = run("/bin/echo via path");
        assert_eq!(r.stdout, "via path\n");
    }

    #[test]
    fn comments_and_newlines() {
        let r = run("# leading comment\necho a # trailing\n\n  echo b ; ; echo c");
        // `; ;` is a syntax error in sh
        assert_eq!(r.status, 2);
        let r = run("# leading comment\necho a # trailing\n\n  echo b\n");
        assert_eq!(r.stdout, "a\nb\n");
    }
}
