//! Detach keys (`--detach-keys`, default ctrl-p,ctrl-q): parsing Docker's key list and
//! Docker's escape proxy, which holds back input that may start the sequence and ends the
//! attach when the whole sequence arrives (the container keeps running).

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT: &[u8] = &[0x10, 0x11];

/// Parses `ctrl-p,ctrl-q`, `a,ctrl-a`... as Docker's `term.ToBytes` does.
pub fn parse(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let code = key.strip_prefix("ctrl-").and_then(|c| match c.as_bytes() {
            [b @ b'a'..=b'z'] => Some(b - b'a' + 1),
            [b'@'] => Some(0),
            [b'['] => Some(27),
            [b'\\'] => Some(28),
            [b']'] => Some(29),
            [b'^'] => Some(30),
            [b'_'] => Some(31),
            _ => None,
        });
        match code {
            Some(c) => out.push(c),
            None => return Err(format!("Unknown character: '{key}'")),
        }
    }
    Ok(out)
}

/// The escape proxy's state over one input stream.
#[derive(Debug, Clone)]
pub struct Escape {
    keys: Vec<u8>,
    matched: usize,
}

impl Escape {
    /// Watches for `keys` (empty: never detaches).
    pub fn new(keys: Vec<u8>) -> Escape {
        Escape { keys, matched: 0 }
    }

    /// Feeds `input`: the bytes to forward to the container, and whether the sequence is
    /// complete (then the attach ends; bytes after it are dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = usize::from(b == self.keys[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockers_key_lists() {
        assert_eq!(parse("ctrl-p,ctrl-q"), Ok(DEFAULT.to_vec()));
        assert_eq!(parse("a,ctrl-@,ctrl-_"), Ok(vec![b'a', 0, 31]));
        assert!(parse("ctrl-1").is_err());
    }

    #[test]
    fn holds_back_a_partial_sequence() {
        let mut e = Escape::new(DEFAULT.to_vec());
        assert_eq!(e.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(e.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(e.feed(b"x\x10\x11rest"), (b"x".to_vec(), true));
        let mut none = Escape::new(Vec::new());
        assert_eq!(none.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
