//! The tokens of DynamoDB's expression grammar, cut as its lexer cuts them, and the
//! `Syntax error; token: "…", near: "…"` text it builds around a token.
//!
//! DynamoDB's lexer (an ANTLR grammar) has these rules, the longest match winning and earlier
//! rules winning ties:
//! - whitespace `[ \t\r\n]+`, kept aside: it only shows up again in a message's `near`;
//! - punctuation `, ( ) . [ ] = <> < <= > >= + -`;
//! - the keywords `IN BETWEEN NOT AND OR SET ADD DELETE REMOVE`, in any case;
//! - a list index `0 | [1-9][0-9]*` (so `007` is three tokens);
//! - an identifier `[A-Za-z][A-Za-z0-9_]*`, a name placeholder `#[A-Za-z0-9_]+` and a value
//!   placeholder `:[A-Za-z0-9_]+`;
//! - any other single character, which no grammar rule accepts.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Comma,
    LParen,
    RParen,
    Dot,
    LBracket,
    RBracket,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    In,
    Between,
    Not,
    And,
    Or,
    Set,
    Add,
    Delete,
    Remove,
    Index,
    Id,
    NameSub,
    ValueSub,
    Unknown,
    Eof,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub kind: Kind,
    /// Byte range in the expression text; empty at the end for `Eof`.
    pub start: usize,
    pub end: usize,
}

/// An expression cut into tokens, always ending with `Eof`.
pub(super) struct Tokens<'a> {
    text: &'a str,
    tokens: Vec<Token>,
}

impl<'a> Tokens<'a> {
    pub fn new(text: &'a str) -> Tokens<'a> {
        let mut tokens = Vec::new();
        let mut at = 0;
        while let Some(c) = text[at..].chars().next() {
            if is_space(c) {
                at += 1;
                continue;
            }
            let (kind, len) = scan(&text[at..], c);
            tokens.push(Token { kind, start: at, end: at + len });
            at += len;
        }
        tokens.push(Token { kind: Kind::Eof, start: text.len(), end: text.len() });
        Tokens { text, tokens }
    }

    /// The token at `i`; past the end, `Eof`.
    pub fn get(&self, i: usize) -> Token {
        self.tokens[i.min(self.tokens.len() - 1)]
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The token's text as DynamoDB quotes it: `<EOF>` for the end.
    pub fn text(&self, i: usize) -> &'a str {
        let token = self.get(i);
        if token.kind == Kind::Eof { "<EOF>" } else { &self.text[token.start..token.end] }
    }

    /// DynamoDB's message for a syntax error at token `i`: the token, and the text from the
    /// token before it to the token after it, whitespace included (the end itself prints as
    /// nothing there).
    pub fn syntax_error(&self, i: usize) -> String {
        let i = i.min(self.tokens.len() - 1);
        let from = if i == 0 { 0 } else { self.tokens[i - 1].start };
        let next = self.get(i + 1);
        let to = if self.tokens[i].kind == Kind::Eof || next.kind == Kind::Eof { self.text.len() } else { next.end };
        format!("Syntax error; token: \"{}\", near: \"{}\"", self.text(i), &self.text[from..to])
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The token starting `rest` (whose first character is `first`) and its byte length.
fn scan(rest: &str, first: char) -> (Kind, usize) {
    let second = rest[first.len_utf8()..].chars().next();
    let word_len = |skip: usize| skip + rest[skip..].find(|c| !is_word(c)).unwrap_or(rest.len() - skip);
    match (first, second) {
        ('<', Some('>')) => (Kind::Ne, 2),
        ('<', Some('=')) => (Kind::Le, 2),
        ('>', Some('=')) => (Kind::Ge, 2),
        (',', _) => (Kind::Comma, 1),
        ('(', _) => (Kind::LParen, 1),
        (')', _) => (Kind::RParen, 1),
        ('.', _) => (Kind::Dot, 1),
        ('[', _) => (Kind::LBracket, 1),
        (']', _) => (Kind::RBracket, 1),
        ('=', _) => (Kind::Eq, 1),
        ('<', _) => (Kind::Lt, 1),
        ('>', _) => (Kind::Gt, 1),
        ('+', _) => (Kind::Plus, 1),
        ('-', _) => (Kind::Minus, 1),
        ('0', _) => (Kind::Index, 1),
        ('1'..='9', _) => (Kind::Index, rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())),
        ('#', Some(c)) if is_word(c) => (Kind::NameSub, word_len(1)),
        (':', Some(c)) if is_word(c) => (Kind::ValueSub, word_len(1)),
        (c, _) if c.is_ascii_alphabetic() => {
            let len = word_len(1);
            (keyword(&rest[..len]).unwrap_or(Kind::Id), len)
        }
        (c, _) => (Kind::Unknown, c.len_utf8()),
    }
}

fn keyword(word: &str) -> Option<Kind> {
    let kinds = [
        ("IN", Kind::In),
        ("BETWEEN", Kind::Between),
        ("NOT", Kind::Not),
        ("AND", Kind::And),
        ("OR", Kind::Or),
        ("SET", Kind::Set),
        ("ADD", Kind::Add),
        ("DELETE", Kind::Delete),
        ("REMOVE", Kind::Remove),
    ];
    kinds.iter().find(|(k, _)| k.eq_ignore_ascii_case(word)).map(|&(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, &str)> {
        let tokens = Tokens::new(text);
        (0..tokens.len()).map(|i| (tokens.get(i).kind, tokens.text(i))).collect()
    }

    #[test]
    fn cuts_tokens_as_dynamodb() {
        use Kind::*;
        assert_eq!(
            kinds("SET #a.b[10] = :v_1, c=list_append(c,:x)"),
            [
                (Set, "SET"),
                (NameSub, "#a"),
                (Dot, "."),
                (Id, "b"),
                (LBracket, "["),
                (Index, "10"),
                (RBracket, "]"),
                (Eq, "="),
                (ValueSub, ":v_1"),
                (Comma, ","),
                (Id, "c"),
                (Eq, "="),
                (Id, "list_append"),
                (LParen, "("),
                (Id, "c"),
                (Comma, ","),
                (ValueSub, ":x"),
                (RParen, ")"),
                (Eof, "<EOF>"),
            ]
        );
        assert_eq!(
            kinds("a<>b<=c>=d<e>f"),
            [
                (Id, "a"),
                (Ne, "<>"),
                (Id, "b"),
                (Le, "<="),
                (Id, "c"),
                (Ge, ">="),
                (Id, "d"),
                (Lt, "<"),
                (Id, "e"),
                (Gt, ">"),
                (Id, "f"),
                (Eof, "<EOF>")
            ]
        );
        // Keywords in any case, but only as whole words.
        assert_eq!(kinds("and AnD android")[..3], [(And, "and"), (And, "AnD"), (Id, "android")]);
        // "007" is three indexes; "_", "#", ":" alone, "!" and non-ASCII are single unknowns.
        assert_eq!(kinds("007")[..3], [(Index, "0"), (Index, "0"), (Index, "7")]);
        assert_eq!(
            kinds("_1 # : !é\u{a0}")[..6],
            [(Unknown, "_"), (Index, "1"), (Unknown, "#"), (Unknown, ":"), (Unknown, "!"), (Unknown, "é")]
        );
        assert_eq!(kinds("#_ :0")[..2], [(NameSub, "#_"), (ValueSub, ":0")]);
        assert_eq!(kinds(" \t\r\n"), [(Eof, "<EOF>")]);
    }

    #[test]
    fn near_spans_the_neighbours_with_their_whitespace() {
        let near = |text: &str, i: usize| Tokens::new(text).syntax_error(i);
        assert_eq!(near("SET = :a", 1), r#"Syntax error; token: "=", near: "SET = :a""#);
        assert_eq!(near("foo", 1), r#"Syntax error; token: "<EOF>", near: "foo""#);
        assert_eq!(near("SET a =  ", 3), r#"Syntax error; token: "<EOF>", near: "=  ""#);
        assert_eq!(near("a AND __typename", 2), r#"Syntax error; token: "_", near: "AND __""#);
        assert_eq!(near("[object Object]", 0), r#"Syntax error; token: "[", near: "[object""#);
        assert_eq!(near("  = a ", 0), r#"Syntax error; token: "=", near: "  = a""#);
        assert_eq!(near("", 0), r#"Syntax error; token: "<EOF>", near: """#);
        assert_eq!(near("   ", 0), r#"Syntax error; token: "<EOF>", near: "   ""#);
    }
}
