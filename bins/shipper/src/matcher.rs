//! fluentd `<match>` patterns over dot-separated tags.

/// A compiled fluentd match pattern: `a.*` (one part), `a.**` (zero or more parts), `{x,y}`
/// (alternatives), several patterns separated by spaces (any may match).
///
/// ```
/// use logferry_shipper::TagPattern;
/// let p = TagPattern::new("s3.** system.{auth,authpriv}.*").unwrap();
/// assert!(p.matches("s3.var.log.app.log"));
/// assert!(p.matches("s3"));
/// assert!(p.matches("system.auth.info"));
/// assert!(!p.matches("system.kern.info"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPattern {
    source: String,
    alternatives: Vec<Vec<Part>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `**`: any number of parts (including none).
    AnyParts,
    /// A part matched by a glob of literal text, `*` and `{a,b}`.
    Glob(String),
}

impl TagPattern {
    /// Compiles a pattern; fails on an empty pattern or unbalanced braces.
    pub fn new(pattern: &str) -> Result<TagPattern, String> {
        let mut alternatives = Vec::new();
        for word in pattern.split_whitespace() {
            for expanded in expand_braces(word)? {
                let parts = expanded
                    .split('.')
                    .map(|p| {
                        if p == "**" {
                            Part::AnyParts
                        } else {
                            Part::Glob(p.to_owned())
                        }
                    })
                    .collect();
                alternatives.push(parts);
            }
        }
        if alternatives.is_empty() {
            return Err("empty match pattern".into());
        }
        Ok(TagPattern {
            source: pattern.to_owned(),
            alternatives,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `tag` matches.
    pub fn matches(&self, tag: &str) -> bool {
        let parts: Vec<&str> = tag.split('.').collect();
        self.alternatives.iter().any(|alt| match_parts(alt, &parts))
    }
}

fn match_parts(pattern: &[Part], tag: &[&str]) -> bool {
    match pattern.split_first() {
        None => tag.is_empty(),
        Some((Part::AnyParts, rest)) => (0..=tag.len()).any(|skip| match_parts(rest, &tag[skip..])),
        Some((Part::Glob(glob), rest)) => match tag.split_first() {
            Some((first, tail)) => {
                glob_match(glob.as_bytes(), first.as_bytes()) && match_parts(rest, tail)
            }
            None => false,
        },
    }
}

fn glob_match(glob: &[u8], text: &[u8]) -> bool {
    match glob.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob_match(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
}

/// Expands `{a,b}` alternatives (nesting allowed) into plain patterns.
fn expand_braces(word: &str) -> Result<Vec<String>, String> {
    let Some(open) = word.find('{') else {
        if word.contains('}') {
            return Err(format!("unbalanced `}}` in match pattern `{word}`"));
        }
        return Ok(vec![word.to_owned()]);
    };
    let mut depth = 0;
    let mut close = None;
    for (i, c) in word[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close.ok_or_else(|| format!("unbalanced `{{` in match pattern `{word}`"))?;
    let (head, body, tail) = (&word[..open], &word[open + 1..close], &word[close + 1..]);
    let mut options = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                options.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    options.push(&body[start..]);
    let mut out = Vec::new();
    for option in options {
        out.extend(expand_braces(&format!("{head}{option}{tail}"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fluentd_semantics() {
        let p = TagPattern::new("a.*").unwrap();
        assert!(p.matches("a.b") && !p.matches("a") && !p.matches("a.b.c"));
        let p = TagPattern::new("a.**").unwrap();
        assert!(p.matches("a") && p.matches("a.b") && p.matches("a.b.c") && !p.matches("b.a"));
        let p = TagPattern::new("**").unwrap();
        assert!(p.matches("anything.at.all"));
        let p = TagPattern::new("a.{b,c}.d").unwrap();
        assert!(p.matches("a.b.d") && p.matches("a.c.d") && !p.matches("a.e.d"));
        let p = TagPattern::new("app.*.log").unwrap();
        assert!(p.matches("app.web.log"));
        let p = TagPattern::new("s3.var.log.go-audit.*").unwrap();
        assert!(p.matches("s3.var.log.go-audit.log"));
        assert!(TagPattern::new("a.{b").is_err());
        assert!(TagPattern::new("  ").is_err());
    }

    proptest! {
        #[test]
        fn double_star_matches_every_tag(tag in "[a-z]{1,5}(\\.[a-z]{1,5}){0,5}") {
            prop_assert!(TagPattern::new("**").unwrap().matches(&tag));
            prop_assert!(TagPattern::new(&tag).unwrap().matches(&tag));
        }
    }
}
