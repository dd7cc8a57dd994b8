//! The limit on a command line's length, enforced on the bytes before imap-next sees them.
//!
//! imap-next bounds a whole command (its lines and literals together) by one size, which must
//! leave room for the largest APPEND; a command line without literals could otherwise fill
//! that much memory before it is refused. [`LineLimit`] passes at most [`MAX_LINE`] bytes of
//! any one line on, drops the rest of an over-long command (a non-synchronising literal it
//! announces included, so those bytes are never taken for commands), and then ends the cut
//! line with a NUL byte, which no IMAP command line may hold: the command fails to parse and
//! is answered `BAD`, and the session goes on with the next one.
//!
//! To know where lines end it follows literals exactly as imap-codec's fragmentizer announces
//! them: a line ending in `{N}` or `{N+}` (N fits in 32 bits) is followed by N bytes of
//! literal, unless it is a synchronising literal over the server's limit, which imap-next
//! refuses so that the client never sends it.

/// The longest command line passed on, its line ending included (Dovecot's default
/// `imap_max_line_length` too). Literals do not count: an APPEND's message is a literal.
pub const MAX_LINE: usize = 64 * 1024;

/// The bytes that end a cut command: NUL cannot appear in a command line outside a literal.
const CUT: &[u8] = b"\0\r\n";

/// What the end of the current line says so far, mirroring imap-codec's fragmentizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    Other,
    Open,
    Digits(u32),
    Plus(u32),
    Closed { length: u32, sync: bool },
    Cr(Option<(u32, bool)>),
}

impl Tail {
    /// The state after one more byte of the line (never `\n`, which ends the line).
    fn step(self, byte: u8) -> Tail {
        match (self, byte) {
            (Tail::Closed { length, sync }, b'\r') => Tail::Cr(Some((length, sync))),
            (_, b'\r') => Tail::Cr(None),
            (_, b'{') => Tail::Open,
            (Tail::Open, b'0'..=b'9') => Tail::Digits(u32::from(byte - b'0')),
            (Tail::Digits(n), b'0'..=b'9') => n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u32::from(byte - b'0')))
                .map_or(Tail::Other, Tail::Digits),
            (Tail::Digits(n), b'+') => Tail::Plus(n),
            (Tail::Digits(length), b'}') => Tail::Closed { length, sync: true },
            (Tail::Plus(length), b'}') => Tail::Closed {
                length,
                sync: false,
            },
            _ => Tail::Other,
        }
    }

    /// The literal a line announces, when it ends in this state: its length and whether it
    /// is synchronising.
    fn announcement(self) -> Option<(u32, bool)> {
        match self {
            Tail::Closed { length, sync } => Some((length, sync)),
            Tail::Cr(a) => a,
            _ => None,
        }
    }
}

/// Filters one connection's input: see the module documentation.
#[derive(Debug)]
pub struct LineLimit {
    max_line: usize,
    max_literal: u32,
    /// Bytes of literal still to come; 0: inside a line.
    literal: u64,
    /// Bytes of the current line seen so far.
    line: usize,
    tail: Tail,
    /// The current command was cut: its bytes are dropped until it ends.
    cutting: bool,
    /// Commands cut since [`LineLimit::take_cut`] was last called.
    cut: usize,
}

impl LineLimit {
    /// A filter for a server that refuses synchronising literals over `max_literal` bytes.
    pub fn new(max_line: usize, max_literal: u32) -> LineLimit {
        LineLimit {
            max_line,
            max_literal,
            literal: 0,
            line: 0,
            tail: Tail::Other,
            cutting: false,
            cut: 0,
        }
    }

    /// Whether a command was cut since the last call: the `BAD` that follows is for a line too
    /// long, not for a malformed one.
    pub fn take_cut(&mut self) -> bool {
        let cut = self.cut > 0;
        self.cut = self.cut.saturating_sub(1);
        cut
    }

    /// Appends to `out` what of `input` imap-next may see.
    pub fn filter(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            if self.literal > 0 {
                let n = usize::try_from(self.literal).map_or(input.len(), |l| l.min(input.len()));
                if !self.cutting {
                    out.extend_from_slice(&input[..n]);
                }
                self.literal -= n as u64;
                input = &input[n..];
                continue;
            }
            let (part, ended) = match input.iter().position(|&b| b == b'\n') {
                Some(i) => (&input[..=i], true),
                None => (input, false),
            };
            input = &input[part.len()..];
            let body = if ended { &part[..part.len() - 1] } else { part };
            for &b in body {
                self.tail = self.tail.step(b);
            }
            if !self.cutting {
                let room = self.max_line.saturating_sub(self.line);
                if part.len() <= room {
                    out.extend_from_slice(part);
                } else {
                    // Keep the line's ending out of what is passed on: CUT ends it.
                    out.extend_from_slice(&body[..room.min(body.len())]);
                    self.cutting = true;
                }
            }
            self.line += part.len();
            if ended {
                self.end_line(out);
            }
        }
    }

    /// A line ended: a literal may follow, and a cut command may be over.
    fn end_line(&mut self, out: &mut Vec<u8>) {
        let announced = self.tail.announcement();
        self.line = 0;
        self.tail = Tail::Other;
        match announced {
            // The client sends a non-synchronising literal whatever the server says, and a
            // synchronising one only when the server accepts it (never for a cut command).
            Some((length, false)) => self.literal = u64::from(length),
            Some((length, true)) if !self.cutting && length <= self.max_literal => {
                self.literal = u64::from(length);
            }
            _ if self.cutting => {
                out.extend_from_slice(CUT);
                self.cutting = false;
                self.cut += 1;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: &mut LineLimit, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            limit.filter(c, &mut out);
        }
        out
    }

    #[test]
    fn short_lines_and_literals_pass_unchanged_whatever_the_chunks() {
        let input: &[u8] =
            b"a1 NOOP\r\na2 APPEND INBOX {12}\r\nline\r\nline\r\n\r\na3 LOGIN {3+}\r\nbob {2}\r\npw\r\n";
        for size in 1..input.len() {
            let mut limit = LineLimit::new(32, 100);
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(run(&mut limit, &chunks), input, "chunks of {size}");
            assert!(!limit.take_cut());
        }
    }

    #[test]
    fn a_long_line_is_cut_and_ended_with_nul() {
        let mut limit = LineLimit::new(12, 100);
        let out = run(
            &mut limit,
            &[b"a1 SEARCH TEXT xxxxxxxx", b"xxxx\r\na2 NOOP\r\n"],
        );
        assert_eq!(out, b"a1 SEARCH TE\0\r\na2 NOOP\r\n");
        assert!(limit.take_cut());
        assert!(!limit.take_cut());
    }

    #[test]
    fn literal_bytes_do_not_count_against_the_line() {
        let mut limit = LineLimit::new(32, 1000);
        let mut input = b"a APPEND X {500}\r\n".to_vec();
        input.extend([b'x'; 500]);
        input.extend(b"\r\n");
        assert_eq!(run(&mut limit, &[&input]), input);
    }

    #[test]
    fn a_cut_command_drops_its_non_synchronising_literal() {
        let mut limit = LineLimit::new(12, 100);
        let out = run(
            &mut limit,
            &[b"a1 APPEND INBOX {10+}\r\na2 NOOP\r\n", b"\r\na3 NOOP\r\n"],
        );
        // The literal's ten bytes look like a command: they are dropped with the rest.
        assert_eq!(out, b"a1 APPEND IN\0\r\na3 NOOP\r\n");
    }

    #[test]
    fn a_cut_command_waits_for_no_synchronising_literal() {
        let mut limit = LineLimit::new(12, 100);
        let out = run(&mut limit, &[b"a1 APPEND INBOX {10}\r\na2 NOOP\r\n"]);
        assert_eq!(out, b"a1 APPEND IN\0\r\na2 NOOP\r\n");
    }

    #[test]
    fn a_refused_synchronising_literal_is_not_expected() {
        let mut limit = LineLimit::new(64, 5);
        let input: &[u8] = b"a1 APPEND INBOX {10}\r\na2 NOOP\r\n";
        assert_eq!(run(&mut limit, &[input]), input);
        // An accepted one is: its bytes are passed on whatever they hold.
        let mut limit = LineLimit::new(64, 50);
        let input: &[u8] = b"a1 APPEND INBOX {10}\r\na2 NOOP\r\n\r\n";
        assert_eq!(run(&mut limit, &[input]), input);
    }

    #[test]
    fn announcements_follow_the_fragmentizer() {
        let ends = |line: &[u8]| {
            let mut t = Tail::Other;
            for &b in line {
                t = t.step(b);
            }
            t.announcement()
        };
        assert_eq!(ends(b"x {5}"), Some((5, true)));
        assert_eq!(ends(b"x {5+}\r"), Some((5, false)));
        assert_eq!(ends(b"x {5} "), None);
        assert_eq!(ends(b"x {}"), None);
        assert_eq!(ends(b"x {+5}"), None);
        assert_eq!(ends(b"x {99999999999}"), None);
        assert_eq!(ends(b"x {{7}"), Some((7, true)));
        assert_eq!(ends(b"x {5}\r\r"), None);
    }
}
