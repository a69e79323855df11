//! `test` / `[`: file, string and integer conditions with `!`, `-a`, `-o` and parentheses.

use std::fs;

use crate::io::Ctx;

/// Status 0 (true), 1 (false) or 2 (error).
pub fn test_applet(args: &[String], ctx: &mut Ctx) -> i32 {
    let name = args[0].as_str();
    let mut operands: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    if name == "[" {
        if operands.last() != Some(&"]") {
            ctx.error("[", "missing ]");
            return 2;
        }
        operands.pop();
    }
    let mut eval = Eval {
        toks: &operands,
        pos: 0,
        ctx: &*ctx,
    };
    let result = if operands.is_empty() {
        Ok(false)
    } else {
        eval.or().and_then(|v| match eval.toks.get(eval.pos) {
            None => Ok(v),
            Some(extra) => Err(format!("{extra}: unexpected operator")),
        })
    };
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(msg) => {
            ctx.error(name, msg);
            2
        }
    }
}

struct Eval<'a, 'c, 'v> {
    toks: &'a [&'a str],
    pos: usize,
    ctx: &'c Ctx<'v>,
}

const UNARY: &[&str] = &[
    "-e", "-f", "-d", "-s", "-z", "-n", "-r", "-w", "-x", "-L", "-h",
];
const BINARY: &[&str] = &[
    "=", "==", "!=", "-eq", "-ne", "-lt", "-gt", "-le", "-ge",
];

impl<'a> Eval<'a, '_, '_> {
    fn peek(&self, offset: usize) -> Option<&'a str> {
        self.toks.get(self.pos + offset).copied()
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.peek(0) == Some("-o") {
            self.pos += 1;
            let rhs = self.and()?;
            v = v || rhs;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.not()?;
        while self.peek(0) == Some("-a") {
            self.pos += 1;
            let rhs = self.not()?;
            v = v && rhs;
        }
        Ok(v)
    }

    fn not(&mut self) -> Result<bool, String> {
        if self.peek(0) == Some("!") && self.peek(1).is_some() {
            self.pos += 1;
            return Ok(!self.not()?);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<bool, String> {
        let Some(first) = self.peek(0) else {
            return Err("argument expected".into());
        };
        // `( expr )`, unless it is a plain string comparison like `( = (`.
        if first == "(" && !self.peek(1).is_some_and(|t| BINARY.contains(&t)) {
            self.pos += 1;
            let v = self.or()?;
            if self.peek(0) != Some(")") {
                return Err("missing )".into());
            }
            self.pos += 1;
            return Ok(v);
        }
        if let (Some(op), Some(rhs)) = (self.peek(1), self.peek(2))
            && BINARY.contains(&op) {
                self.pos += 3;
                return binary(first, op, rhs);
            }
        if UNARY.contains(&first)
            && let Some(arg) = self.peek(1) {
                self.pos += 2;
                return Ok(self.unary(first, arg));
            }
        self.pos += 1;
        Ok(!first.is_empty())
    }

    fn unary(&self, op: &str, arg: &str) -> bool {
        let path = || self.ctx.path(arg);
        match op {
            "-z" => arg.is_empty(),
            "-n" => !arg.is_empty(),
            "-e" | "-r" | "-w" | "-x" => fs::metadata(path()).is_ok(),
            "-f" => fs::metadata(path()).is_ok_and(|m| m.is_file()),
            "-d" => fs::metadata(path()).is_ok_and(|m| m.is_dir()),
            "-s" => fs::metadata(path()).is_ok_and(|m| m.len() > 0),
            "-L" | "-h" => fs::symlink_metadata(path()).is_ok_and(|m| m.file_type().is_symlink()),
            _ => false,
        }
    }
}

fn integer(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("{s}: integer expression expected"))
}

fn binary(lhs: &str, op: &str, rhs: &str) -> Result<bool, String> {
    Ok(match op {
        "=" | "==" => lhs == rhs,
        "!=" => lhs != rhs,
        _ => {
            let (a, b) = (integer(lhs)?, integer(rhs)?);
            match op {
                "-eq" => a == b,
                "-ne" => a != b,
                "-lt" => a < b,
                "-gt" => a > b,
                "-le" => a <= b,
                _ => a >= b,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Capture, TempDir};
    use std::collections::BTreeMap;

    fn t(dir: &TempDir, args: &[&str]) -> (i32, String) {
        let cap = Capture::new();
        let vars = BTreeMap::new();
        let mut ctx = Ctx {
            io: cap.io(),
            vars: &vars,
            cwd: dir.path(),
        };
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let status = test_applet(&args, &mut ctx);
        (status, cap.stderr())
    }

    #[test]
    fn strings_and_integers() {
        let d = TempDir::new();
        let cases: &[(&[&str], i32)] = &[
            (&["test"], 1),
            (&["test", "x"], 0),
            (&["test", ""], 1),
            (&["test", "-n"], 0),
            (&["test", "-z", ""], 0),
            (&["test", "-n", ""], 1),
            (&["test", "a", "=", "a"], 0),
            (&["test", "a", "!=", "a"], 1),
            (&["test", "1", "-lt", "2"], 0),
            (&["test", "2", "-le", "2"], 0),
            (&["test", "3", "-gt", "2"], 0),
            (&["test", "3", "-ge", "4"], 1),
            (&["test", "-1", "-eq", "-1"], 0),
            (&["test", "5", "-ne", "5"], 1),
            (&["test", "!", "a", "=", "b"], 0),
            (&["test", "a", "=", "a", "-a", "b", "=", "c"], 1),
            (&["test", "a", "=", "a", "-o", "b", "=", "c"], 0),
            (&["test", "(", "x", "=", "y", ")", "-o", "1", "-eq", "1"], 0),
            (&["[", "1", "-lt", "2", "]"], 0),
            (&["[", "!", "1", "-lt", "2", "]"], 1),
        ];
        for (args, want) in cases {
            assert_eq!(t(&d, args).0, *want, "{args:?}");
        }
        assert_eq!(t(&d, &["test", "a", "-lt", "2"]), (2, "test: a: integer expression expected\n".into()));
        assert_eq!(t(&d, &["[", "1", "=", "1"]), (2, "[: missing ]\n".into()));
    }

    #[test]
    fn files() {
        let d = TempDir::new();
        fs::write(d.path().join("full"), "x").unwrap();
        fs::write(d.path().join("empty"), "").unwrap();
        fs::create_dir(d.path().join("dir")).unwrap();
        let cases: &[(&[&str], i32)] = &[
            (&["test", "-e", "full"], 0),
            (&["test", "-e", "missing"], 1),
            (&["test", "-f", "full"], 0),
            (&["test", "-f", "dir"], 1),
            (&["test", "-d", "dir"], 0),
            (&["test", "-s", "full"], 0),
            (&["test", "-s", "empty"], 1),
            (&["test", "!", "-e", "missing"], 0),
        ];
        for (args, want) in cases {
            assert_eq!(t(&d, args).0, *want, "{args:?}");
        }
        let abs = d.path().join("full").display().to_string();
        assert_eq!(t(&d, &["test", "-f", &abs]).0, 0);
    }
}
