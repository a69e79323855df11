//! Lexer and parser of the small shell language. The whole input is parsed before anything
//! runs, so an unsupported construct anywhere means nothing is executed.

use std::fmt;

/// Why a command line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A valid shell construct this interpreter does not implement (pipe, `$(...)`, `for`...).
    Unsupported(&'static str),
    /// Malformed input.
    Syntax(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unsupported(name) => write!(f, "unsupported construct: {name}"),
            ParseError::Syntax(msg) => write!(f, "syntax error: {msg}"),
        }
    }
}

type Result<T> = std::result::Result<T, ParseError>;

fn syntax<T>(msg: impl Into<String>) -> Result<T> {
    Err(ParseError::Syntax(msg.into()))
}

// ---------------------------------------------------------------------------------------------
// AST
// ---------------------------------------------------------------------------------------------

/// A word: literal text and parameter expansions, each remembering whether it was quoted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit { text: String, quoted: bool },
    Param { param: Param, quoted: bool },
}

/// `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub op: Option<ParamOp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamOp {
    /// `:-` / `:+` (treat empty as unset) rather than `-` / `+`.
    pub colon: bool,
    /// `+` (alternative value) rather than `-` (default value).
    pub alternative: bool,
    pub word: Vec<Part>,
}

impl Word {
    /// The text if this is one unquoted literal (keywords, `!`, assignments).
    pub fn plain(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit { text, quoted: false }] => Some(text),
            _ => None,
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        self.plain() == Some(kw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirKind {
    /// `< FILE`
    In,
    /// `> FILE`
    Out,
    /// `>> FILE`
    Append,
    /// `N>&M`
    Dup(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub fd: u32,
    pub kind: RedirKind,
    /// The file name (empty for `Dup`).
    pub target: Word,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Simple {
        assigns: Vec<(String, Word)>,
        words: Vec<Word>,
        redirects: Vec<Redirect>,
    },
    While {
        until: bool,
        cond: List,
        body: List,
        redirects: Vec<Redirect>,
    },
    If {
        branches: Vec<(List, List)>,
        otherwise: Option<List>,
        redirects: Vec<Redirect>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub negate: bool,
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
}

/// Commands run one after another (`;` or newline separated).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List(pub Vec<AndOr>);

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    Semi,
    Newline,
    AndIf,
    OrIf,
    Redir { fd: u32, kind: RedirKind },
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => match w.plain() {
                Some(s) => write!(f, "'{s}'"),
                None => f.write_str("word"),
            },
            Tok::Semi => f.write_str("';'"),
            Tok::Newline => f.write_str("newline"),
            Tok::AndIf => f.write_str("'&&'"),
            Tok::OrIf => f.write_str("'||'"),
            Tok::Redir { .. } => f.write_str("redirection"),
        }
    }
}

/// An unsupported compound command (`for`, `case`...) explains a later lexer error better
/// (`case x in x)` fails on the `)`, `for f in *` on the glob).
fn prefer_keyword(toks: &[Tok], err: ParseError) -> ParseError {
    let mut command_position = true;
    for t in toks {
        match t {
            Tok::Word(w) => {
                if command_position {
                    match w.plain() {
                        Some("for") => return ParseError::Unsupported("for"),
                        Some("case") => return ParseError::Unsupported("case"),
                        Some("select") => return ParseError::Unsupported("select"),
                        Some("function") => return ParseError::Unsupported("function"),
                        _ => {}
                    }
                }
                command_position = w
                    .plain()
                    .is_some_and(|s| matches!(s, "do" | "then" | "else" | "!" | "if" | "while" | "until"));
            }
            Tok::Redir { .. } => command_position = false,
            _ => command_position = true,
        }
    }
    err
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// A valid variable name.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn tokens(mut self) -> Result<Vec<Tok>> {
        let mut toks = Vec::new();
        self.tokens_into(&mut toks).map_err(|e| prefer_keyword(&toks, e))?;
        Ok(toks)
    }

    fn tokens_into(&mut self, toks: &mut Vec<Tok>) -> Result<()> {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => {
                    self.pos += 1;
                }
                '\\' if self.peek_at(1) == Some('\n') => self.pos += 2,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                '\n' => {
                    self.pos += 1;
                    toks.push(Tok::Newline);
                }
                ';' => {
                    if self.peek_at(1) == Some(';') {
                        return Err(ParseError::Unsupported("case"));
                    }
                    self.pos += 1;
                    toks.push(Tok::Semi);
                }
                '&' => match self.peek_at(1) {
                    Some('&') => {
                        self.pos += 2;
                        toks.push(Tok::AndIf);
                    }
                    Some('>') => return Err(ParseError::Unsupported("redirection &>")),
                    _ => return Err(ParseError::Unsupported("background")),
                },
                '|' => {
                    if self.peek_at(1) == Some('|') {
                        self.pos += 2;
                        toks.push(Tok::OrIf);
                    } else {
                        return Err(ParseError::Unsupported("pipe"));
                    }
                }
                '(' | ')' => {
                    let after_word = matches!(toks.last(), Some(Tok::Word(_)));
                    let next = self.chars[self.pos + 1..]
                        .iter()
                        .find(|c| !matches!(c, ' ' | '\t'));
                    return Err(ParseError::Unsupported(
                        if c == '(' && after_word && next == Some(&')') {
                            "function"
                        } else {
                            "subshell"
                        },
                    ));
                }
                '<' | '>' => toks.push(self.redirect(None)?),
                c if c.is_ascii_digit() => {
                    // An io number: digits immediately followed by `<` or `>`.
                    let mut end = self.pos;
                    while self.chars.get(end).is_some_and(char::is_ascii_digit) {
                        end += 1;
                    }
                    if matches!(self.chars.get(end), Some('<' | '>')) {
                        let digits: String = self.chars[self.pos..end].iter().collect();
                        self.pos = end;
                        let fd = digits
                            .parse::<u32>()
                            .map_err(|_| ParseError::Unsupported("file descriptor > 2"))?;
                        toks.push(self.redirect(Some(fd))?);
                    } else {
                        toks.push(Tok::Word(self.word()?));
                    }
                }
                _ => toks.push(Tok::Word(self.word()?)),
            }
        }
        Ok(())
    }

    /// At `<` or `>`, optionally after an io number.
    fn redirect(&mut self, fd: Option<u32>) -> Result<Tok> {
        let c = self.bump();
        let (default_fd, kind) = if c == Some('<') {
            match self.peek() {
                Some('<') => return Err(ParseError::Unsupported("heredoc")),
                Some('&') => return Err(ParseError::Unsupported("redirection <&")),
                Some('>') => return Err(ParseError::Unsupported("redirection <>")),
                _ => (0, RedirKind::In),
            }
        } else {
            match self.peek() {
                Some('>') => {
                    self.pos += 1;
                    (1, RedirKind::Append)
                }
                Some('|') => {
                    self.pos += 1;
                    (1, RedirKind::Out)
                }
                Some('&') => {
                    self.pos += 1;
                    let target = match self.bump() {
                        Some(d @ ('1' | '2')) => d.to_digit(10).unwrap_or(1),
                        _ => return Err(ParseError::Unsupported("redirection >& (only 1 and 2)")),
                    };
                    if self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                        return Err(ParseError::Unsupported("redirection >& (only 1 and 2)"));
                    }
                    (1, RedirKind::Dup(target))
                }
                _ => (1, RedirKind::Out),
            }
        };
        let fd = fd.unwrap_or(default_fd);
        match (fd, kind) {
            (0, RedirKind::In) | (1 | 2, RedirKind::Out | RedirKind::Append | RedirKind::Dup(_)) => {
                Ok(Tok::Redir { fd, kind })
            }
            _ => Err(ParseError::Unsupported("redirection of this file descriptor")),
        }
    }

    fn word(&mut self) -> Result<Word> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        fn flush(parts: &mut Vec<Part>, lit: &mut String) {
            if !lit.is_empty() {
                parts.push(Part::Lit {
                    text: std::mem::take(lit),
                    quoted: false,
                });
            }
        }
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
                '\\' => {
                    self.pos += 1;
                    match self.bump() {
                        Some('\n') => {}
                        Some(e) => {
                            flush(&mut parts, &mut lit);
                            parts.push(Part::Lit {
                                text: e.to_string(),
                                quoted: true,
                            });
                        }
                        None => lit.push('\\'),
                    }
                }
                '\'' => {
                    self.pos += 1;
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c != '\'') {
                        self.pos += 1;
                    }
                    if self.peek().is_none() {
                        return syntax("unterminated single quote");
                    }
                    let text = self.chars[start..self.pos].iter().collect();
                    self.pos += 1;
                    flush(&mut parts, &mut lit);
                    parts.push(Part::Lit { text, quoted: true });
                }
                '"' => {
                    self.pos += 1;
                    flush(&mut parts, &mut lit);
                    self.double_quoted(&mut parts)?;
                }
                '`' => return Err(ParseError::Unsupported("backquote")),
                '$' => {
                    if let Some(param) = self.dollar()? {
                        flush(&mut parts, &mut lit);
                        parts.push(Part::Param {
                            param,
                            quoted: false,
                        });
                    } else {
                        lit.push('$');
                    }
                }
                '*' | '?' => return Err(ParseError::Unsupported("glob")),
                c => {
                    self.pos += 1;
                    lit.push(c);
                }
            }
        }
        flush(&mut parts, &mut lit);
        Ok(Word { parts })
    }

    /// After the opening `"`: up to and including the closing `"`.
    fn double_quoted(&mut self, parts: &mut Vec<Part>) -> Result<()> {
        let mut lit = String::new();
        // `""` is an (empty) quoted word.
        let mut any = false;
        loop {
            match self.peek() {
                None => return syntax("unterminated double quote"),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.bump() {
                        Some('\n') => {}
                        Some(e @ ('$' | '`' | '"' | '\\')) => lit.push(e),
                        Some(e) => {
                            lit.push('\\');
                            lit.push(e);
                        }
                        None => return syntax("unterminated double quote"),
                    }
                }
                Some('`') => return Err(ParseError::Unsupported("backquote")),
                Some('$') => {
                    if let Some(param) = self.dollar()? {
                        if !lit.is_empty() {
                            parts.push(Part::Lit {
                                text: std::mem::take(&mut lit),
                                quoted: true,
                            });
                        }
                        parts.push(Part::Param {
                            param,
                            quoted: true,
                        });
                        any = true;
                    } else {
                        lit.push('$');
                    }
                }
                Some(c) => {
                    self.pos += 1;
                    lit.push(c);
                }
            }
        }
        if !lit.is_empty() || !any {
            parts.push(Part::Lit {
                text: lit,
                quoted: true,
            });
        }
        Ok(())
    }

    /// At `$`: a parameter expansion, or `None` for a literal `$` (consumed).
    fn dollar(&mut self) -> Result<Option<Param>> {
        self.pos += 1;
        match self.peek() {
            Some('(') => Err(ParseError::Unsupported(if self.peek_at(1) == Some('(') {
                "arithmetic expansion"
            } else {
                "command substitution"
            })),
            Some('{') => {
                self.pos += 1;
                self.braced().map(Some)
            }
            Some(c @ ('?' | '$' | '#' | '@' | '*' | '0'..='9')) => {
                self.pos += 1;
                Ok(Some(Param {
                    name: c.to_string(),
                    op: None,
                }))
            }
            Some('!' | '-') => Err(ParseError::Unsupported("special parameter")),
            Some(c) if is_name_start(c) => {
                let start = self.pos;
                while self.peek().is_some_and(is_name_char) {
                    self.pos += 1;
                }
                Ok(Some(Param {
                    name: self.chars[start..self.pos].iter().collect(),
                    op: None,
                }))
            }
            _ => Ok(None),
        }
    }

    /// After `${`: up to and including the closing `}`.
    fn braced(&mut self) -> Result<Param> {
        let name: String = match self.peek() {
            Some(c @ ('?' | '$' | '#' | '@' | '*' | '0'..='9')) if self.peek_at(1) == Some('}') => {
                self.pos += 1;
                c.to_string()
            }
            Some(c) if is_name_start(c) => {
                let start = self.pos;
                while self.peek().is_some_and(is_name_char) {
                    self.pos += 1;
                }
                self.chars[start..self.pos].iter().collect()
            }
            None => return syntax("unterminated ${"),
            _ => return Err(ParseError::Unsupported("parameter expansion")),
        };
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let op = match self.bump() {
            Some('}') if !colon => return Ok(Param { name, op: None }),
            Some(c @ ('-' | '+')) => c,
            None => return syntax("unterminated ${"),
            _ => return Err(ParseError::Unsupported("parameter expansion")),
        };
        let word = self.param_word()?;
        Ok(Param {
            name,
            op: Some(ParamOp {
                colon,
                alternative: op == '+',
                word,
            }),
        })
    }

    /// The word of `${NAME:-word}` up to and including the closing `}`: literal text with
    /// `$` expansions and backslash escapes.
    fn param_word(&mut self) -> Result<Vec<Part>> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            match self.peek() {
                None => return syntax("unterminated ${"),
                Some('}') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.bump() {
                        Some(e) => lit.push(e),
                        None => return syntax("unterminated ${"),
                    }
                }
                Some('`') => return Err(ParseError::Unsupported("backquote")),
                Some('\'' | '"') => return Err(ParseError::Unsupported("quotes inside ${...}")),
                Some('$') => {
                    if let Some(param) = self.dollar()? {
                        if !lit.is_empty() {
                            parts.push(Part::Lit {
                                text: std::mem::take(&mut lit),
                                quoted: false,
                            });
                        }
                        parts.push(Part::Param {
                            param,
                            quoted: false,
                        });
                    } else {
                        lit.push('$');
                    }
                }
                Some(c) => {
                    self.pos += 1;
                    lit.push(c);
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit {
                text: lit,
                quoted: false,
            });
        }
        Ok(parts)
    }
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// Parses a whole script.
pub fn parse(src: &str) -> Result<List> {
    let toks = Lexer {
        chars: src.chars().collect(),
        pos: 0,
    }
    .tokens()?;
    let mut p = Parser { toks, pos: 0 };
    let list = p.list(&[])?;
    match p.peek() {
        None => Ok(list),
        Some(t) => syntax(format!("unexpected {t}")),
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

const RESERVED: &[&str] = &["do", "done", "then", "else", "elif", "fi"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn at_keyword(&self, kws: &[&str]) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if kws.iter().any(|k| w.is_keyword(k)))
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<()> {
        if self.at_keyword(&[kw]) {
            self.pos += 1;
            Ok(())
        } else {
            match self.peek() {
                Some(t) => syntax(format!("expected '{kw}', found {t}")),
                None => syntax(format!("expected '{kw}' before end of input")),
            }
        }
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Tok::Newline) {
            self.pos += 1;
        }
    }

    /// Commands up to end of input or one of the `terminators` keywords.
    fn list(&mut self, terminators: &[&str]) -> Result<List> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            if self.peek().is_none() || self.at_keyword(terminators) {
                break;
            }
            items.push(self.and_or()?);
            match self.peek() {
                Some(Tok::Semi | Tok::Newline) => self.pos += 1,
                None => break,
                Some(_) if self.at_keyword(terminators) => break,
                Some(t) => return syntax(format!("unexpected {t}")),
            }
        }
        Ok(List(items))
    }

    /// A non-empty list ended by one of `terminators`.
    fn body(&mut self, terminators: &[&str], what: &str) -> Result<List> {
        let list = self.list(terminators)?;
        if list.0.is_empty() {
            return syntax(format!("empty {what}"));
        }
        Ok(list)
    }

    fn and_or(&mut self) -> Result<AndOr> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let connector = match self.peek() {
                Some(Tok::AndIf) => Connector::And,
                Some(Tok::OrIf) => Connector::Or,
                _ => break,
            };
            self.pos += 1;
            self.skip_newlines();
            rest.push((connector, self.pipeline()?));
        }
        Ok(AndOr { first, rest })
    }

    fn pipeline(&mut self) -> Result<Pipeline> {
        let negate = self.at_keyword(&["!"]);
        if negate {
            self.pos += 1;
        }
        Ok(Pipeline {
            negate,
            command: self.command()?,
        })
    }

    fn command(&mut self) -> Result<Command> {
        let Some(Tok::Word(w)) = self.peek() else {
            // A simple command may start with a redirection.
            return match self.peek() {
                Some(Tok::Redir { .. }) => self.simple(),
                Some(t) => syntax(format!("unexpected {t}")),
                None => syntax("unexpected end of input"),
            };
        };
        match w.plain() {
            Some(kw @ ("while" | "until")) => {
                let until = kw == "until";
                self.pos += 1;
                let cond = self.body(&["do"], "loop condition")?;
                self.expect_keyword("do")?;
                let body = self.body(&["done"], "loop body")?;
                self.expect_keyword("done")?;
                Ok(Command::While {
                    until,
                    cond,
                    body,
                    redirects: self.trailing_redirects()?,
                })
            }
            Some("if") => {
                self.pos += 1;
                let mut branches = Vec::new();
                let mut otherwise = None;
                loop {
                    let cond = self.body(&["then"], "if condition")?;
                    self.expect_keyword("then")?;
                    let body = self.body(&["elif", "else", "fi"], "then branch")?;
                    branches.push((cond, body));
                    if self.at_keyword(&["elif"]) {
                        self.pos += 1;
                        continue;
                    }
                    if self.at_keyword(&["else"]) {
                        self.pos += 1;
                        otherwise = Some(self.body(&["fi"], "else branch")?);
                    }
                    self.expect_keyword("fi")?;
                    break;
                }
                Ok(Command::If {
                    branches,
                    otherwise,
                    redirects: self.trailing_redirects()?,
                })
            }
            Some("for") => Err(ParseError::Unsupported("for")),
            Some("case") => Err(ParseError::Unsupported("case")),
            Some("select") => Err(ParseError::Unsupported("select")),
            Some("function") => Err(ParseError::Unsupported("function")),
            Some("[[") => Err(ParseError::Unsupported("[[")),
            Some("{" | "}") => Err(ParseError::Unsupported("brace group")),
            Some(kw) if RESERVED.contains(&kw) => syntax(format!("unexpected '{kw}'")),
            _ => self.simple(),
        }
    }

    fn redirect(&mut self) -> Result<Option<Redirect>> {
        let Some(&Tok::Redir { fd, kind }) = self.peek() else {
            return Ok(None);
        };
        self.pos += 1;
        let target = if let RedirKind::Dup(_) = kind {
            Word::default()
        } else {
            match self.peek() {
                Some(Tok::Word(w)) => {
                    let w = w.clone();
                    self.pos += 1;
                    w
                }
                _ => return syntax("missing file name after redirection"),
            }
        };
        Ok(Some(Redirect { fd, kind, target }))
    }

    fn trailing_redirects(&mut self) -> Result<Vec<Redirect>> {
        let mut redirects = Vec::new();
        while let Some(r) = self.redirect()? {
            redirects.push(r);
        }
        Ok(redirects)
    }

    fn simple(&mut self) -> Result<Command> {
        let mut assigns = Vec::new();
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        loop {
            if let Some(r) = self.redirect()? {
                redirects.push(r);
                continue;
            }
            let Some(Tok::Word(w)) = self.peek() else {
                break;
            };
            let w = w.clone();
            self.pos += 1;
            if words.is_empty()
                && let Some(assign) = assignment(&w) {
                    assigns.push(assign);
                    continue;
                }
            words.push(w);
        }
        if assigns.is_empty() && words.is_empty() && redirects.is_empty() {
            return match self.peek() {
                Some(t) => syntax(format!("unexpected {t}")),
                None => syntax("unexpected end of input"),
            };
        }
        Ok(Command::Simple {
            assigns,
            words,
            redirects,
        })
    }
}

/// `NAME=value...` (the `NAME=` part unquoted).
fn assignment(w: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit {
        text,
        quoted: false,
    }) = w.parts.first()
    else {
        return None;
    };
    let (name, value) = text.split_once('=')?;
    if !is_name(name) {
        return None;
    }
    let mut parts = Vec::new();
    if !value.is_empty() {
        parts.push(Part::Lit {
            text: value.to_string(),
            quoted: false,
        });
    }
    parts.extend(w.parts[1..].iter().cloned());
    Some((name.to_string(), Word { parts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str, quoted: bool) -> Part {
        Part::Lit {
            text: s.into(),
            quoted,
        }
    }

    fn simple_words(src: &str) -> Vec<Word> {
        let list = parse(src).unwrap();
        match &list.0[0].first.command {
            Command::Simple { words, .. } => words.clone(),
            other => panic!("not simple: {other:?}"),
        }
    }

    #[test]
    fn quoting_makes_single_words() {
        let words = simple_words(r#"echo 'a b' "c d" e\ f g"h"'i'"#);
        assert_eq!(words.len(), 5);
        assert_eq!(words[1].parts, vec![lit("a b", true)]);
        assert_eq!(words[2].parts, vec![lit("c d", true)]);
        assert_eq!(words[3].parts, vec![lit("e", false), lit(" ", true), lit("f", false)]);
        assert_eq!(
            words[4].parts,
            vec![lit("g", false), lit("h", true), lit("i", true)]
        );
    }

    #[test]
    fn empty_quotes_are_a_word() {
        let words = simple_words(r#"echo "" ''"#);
        assert_eq!(words[1].parts, vec![lit("", true)]);
        assert_eq!(words[2].parts, vec![lit("", true)]);
    }

    #[test]
    fn parameters() {
        let words = simple_words(r#"echo $A ${B} "$?x" ${C:-d$E} $ '$F'"#);
        let param = |name: &str, quoted| Part::Param {
            param: Param {
                name: name.into(),
                op: None,
            },
            quoted,
        };
        assert_eq!(words[1].parts, vec![param("A", false)]);
        assert_eq!(words[2].parts, vec![param("B", false)]);
        assert_eq!(words[3].parts, vec![param("?", true), lit("x", true)]);
        match &words[4].parts[0] {
            Part::Param {
                param: Param { name, op: Some(op) },
                ..
            } => {
                assert_eq!(name, "C");
                assert!(op.colon && !op.alternative);
                assert_eq!(op.word, vec![lit("d", false), param("E", false)]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(words[5].parts, vec![lit("$", false)]);
        assert_eq!(words[6].parts, vec![lit("$F", true)]);
    }

    #[test]
    fn redirections_and_assignments() {
        let list = parse("A=1 B='x y' cmd arg >out 2>>err <in 2>&1").unwrap();
        let Command::Simple {
            assigns,
            words,
            redirects,
        } = &list.0[0].first.command
        else {
            panic!()
        };
        assert_eq!(assigns.len(), 2);
        assert_eq!(assigns[1].0, "B");
        assert_eq!(assigns[1].1.parts, vec![lit("x y", true)]);
        assert_eq!(words.len(), 2);
        let kinds: Vec<_> = redirects.iter().map(|r| (r.fd, r.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (1, RedirKind::Out),
                (2, RedirKind::Append),
                (0, RedirKind::In),
                (2, RedirKind::Dup(1))
            ]
        );
        // `A=1` after the command name is an ordinary argument.
        assert_eq!(simple_words("echo A=1").len(), 2);
    }

    #[test]
    fn control_structures() {
        let list = parse("while true; do echo a; done\nif a; then b; elif c; then d; else e; fi").unwrap();
        assert_eq!(list.0.len(), 2);
        assert!(matches!(list.0[0].first.command, Command::While { until: false, .. }));
        match &list.0[1].first.command {
            Command::If {
                branches,
                otherwise,
                ..
            } => {
                assert_eq!(branches.len(), 2);
                assert!(otherwise.is_some());
            }
            other => panic!("{other:?}"),
        }
        let list = parse("a && b || ! c").unwrap();
        assert_eq!(list.0[0].rest.len(), 2);
        assert!(list.0[0].rest[1].1.negate);
        // Keywords are plain words in argument position.
        assert_eq!(simple_words("echo done fi").len(), 3);
    }

    #[test]
    fn comments_and_continuations() {
        let list = parse("# comment\necho a # trailing\necho b\\\nc").unwrap();
        assert_eq!(list.0.len(), 2);
        assert_eq!(simple_words("echo a#b")[1].parts, vec![lit("a#b", false)]);
    }

    #[test]
    fn unsupported_constructs() {
        let cases = [
            ("echo a | cat", "pipe"),
            ("echo `date`", "backquote"),
            ("echo $(date)", "command substitution"),
            ("echo \"$(date)\"", "command substitution"),
            ("echo $((1+2))", "arithmetic expansion"),
            ("for i in 1 2; do echo $i; done", "for"),
            ("case x in x) ;; esac", "case"),
            ("f() { echo; }", "function"),
            ("function f { echo; }", "function"),
            ("ls *.txt", "glob"),
            ("ls a?", "glob"),
            ("sleep 1 &", "background"),
            ("cat <<EOF", "heredoc"),
            ("(echo a)", "subshell"),
            ("{ echo a; }", "brace group"),
            ("echo ${#A}", "parameter expansion"),
        ];
        for (src, name) in cases {
            assert_eq!(parse(src), Err(ParseError::Unsupported(name)), "{src}");
        }
        // Quoted metacharacters are fine.
        assert!(parse("echo 'a | b' \"*\" \\& '$(x)'").is_ok());
    }

    #[test]
    fn syntax_errors() {
        for src in [
            "if true; then echo a",
            "while true; do done",
            "echo 'unterminated",
            "echo \"unterminated",
            "&& echo",
            "echo a ;; ",
            "done",
            "echo >",
            "then",
        ] {
            assert!(parse(src).is_err(), "{src}");
        }
    }
}
