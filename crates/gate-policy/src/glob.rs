//! `*`-only globs: `*` matches any run of characters (for scopes: within one `:` segment).

/// A pattern whose `*` matches any (possibly empty) run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    /// The literal pieces between `*`s; `parts.len() == 1` means no `*`.
    parts: Vec<String>,
}

impl Glob {
    /// Why a pattern is refused: empty, `**`, or a character other glob dialects treat as
    /// special (someone writing `bulwark-?` expects it to do something; it would not).
    pub(crate) fn parse(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        if pattern.contains("**") {
            return Err(format!("bad glob {pattern:?}: `**` (use a single `*`)"));
        }
        if let Some(c) = pattern.chars().find(|c| "?[]{}!\\".contains(*c)) {
            return Err(format!(
                "bad glob {pattern:?}: {c:?} is not supported (only `*` is special)"
            ));
        }
        Ok(Glob {
            parts: pattern.split('*').map(str::to_owned).collect(),
        })
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(x) => x,
            None => return false,
        };
        let Some(mut tail) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            // No `*`: the whole text must be the literal.
            return tail.is_empty();
        };
        // Leftmost match of each middle piece leaves the most room for the rest, so greedy
        // search is exact for `*`-only patterns.
        for part in middle {
            match tail.find(part.as_str()) {
                Some(i) => tail = &tail[i + part.len()..],
                None => return false,
            }
        }
        tail.len() >= last.len() && tail.ends_with(last.as_str())
    }
}

/// A scope pattern: `:`-separated segments, each a [`Glob`], so `temporal:*:write` matches
/// `temporal:bulwark:write` but not `temporal:a:b:write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScopeGlob {
    segments: Vec<Glob>,
}

impl ScopeGlob {
    pub(crate) fn parse(pattern: &str) -> Result<ScopeGlob, String> {
        if pattern.is_empty() {
            return Err("empty scope".into());
        }
        let segments = pattern
            .split(':')
            .map(|s| Glob::parse(s).map_err(|e| format!("bad scope pattern {pattern:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(ScopeGlob { segments })
    }

    pub(crate) fn matches(&self, scope: &str) -> bool {
        let mut pieces = scope.split(':');
        for segment in &self.segments {
            match pieces.next() {
                Some(piece) if segment.matches(piece) => {}
                _ => return false,
            }
        }
        pieces.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::parse(p).unwrap()
    }

    #[test]
    fn literal_and_star() {
        assert!(g("bulwark").matches("bulwark"));
        assert!(!g("bulwark").matches("bulwark-x"));
        assert!(g("*").matches(""));
        assert!(g("*").matches("anything"));
        assert!(g("bulwark-*").matches("bulwark-"));
        assert!(g("bulwark-*").matches("bulwark-main"));
        assert!(!g("bulwark-*").matches("other"));
        assert!(!g("bulwark-*").matches("xbulwark-main"));
        assert!(g("*-queue").matches("a-queue"));
        assert!(!g("*-queue").matches("a-queuex"));
        assert!(g("a*b*c").matches("abc"));
        assert!(g("a*b*c").matches("aXbYbc"));
        assert!(!g("a*b*c").matches("acb"));
        // The suffix must not overlap the prefix.
        assert!(!g("ab*ba").matches("aba"));
    }

    #[test]
    fn bad_globs() {
        for p in ["", "a**", "a?", "[ab]", "{a,b}"] {
            assert!(Glob::parse(p).is_err(), "{p:?} accepted");
        }
    }

    #[test]
    fn scope_segments() {
        let s = ScopeGlob::parse("temporal:*:write").unwrap();
        assert!(s.matches("temporal:bulwark:write"));
        assert!(!s.matches("temporal:bulwark:read"));
        assert!(!s.matches("temporal:a:b:write"));
        assert!(!s.matches("temporal:write"));
        let plain = ScopeGlob::parse("temporal-worker").unwrap();
        assert!(plain.matches("temporal-worker"));
        assert!(!plain.matches("temporal-worker:x"));
    }
}
