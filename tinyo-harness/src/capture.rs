//! Bounded capture of a container's output: the head and the tail are kept, the middle is
//! dropped and counted, so a test that floods stdout can neither exhaust memory nor hide
//! how it began or ended.

use std::collections::VecDeque;
use std::fmt;

/// Bytes kept at each end.
const KEEP: usize = 1 << 20;

/// A container's captured output.
#[derive(Debug, Default)]
pub struct CappedOutput {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl CappedOutput {
    /// Append bytes.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if self.head.len() < KEEP {
            let n = (KEEP - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(KEEP);
        self.tail.drain(..excess);
        self.dropped += excess as u64;
    }

    /// Whether the kept head or tail contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        let (a, b) = self.tail.as_slices();
        [self.head.as_slice(), &[a, b].concat()]
            .iter()
            .any(|part| String::from_utf8_lossy(part).contains(needle))
    }

    /// Nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty()
    }
}

impl fmt::Display for CappedOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.head))?;
        if self.dropped > 0 {
            write!(
                f,
                "\n[tinyo: {} bytes of output dropped here; the first and last {} MiB are kept]\n",
                self.dropped,
                KEEP >> 20
            )?;
        }
        let (a, b) = self.tail.as_slices();
        f.write_str(&String::from_utf8_lossy(&[a, b].concat()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_and_counts_the_rest() {
        let mut o = CappedOutput::default();
        o.push(b"start\n");
        for _ in 0..3 {
            o.push(&vec![b'x'; KEEP]);
        }
        o.push(b"end\n");
        let text = o.to_string();
        assert!(text.starts_with("start\n"));
        assert!(text.ends_with("end\n"));
        assert_eq!(o.dropped, (3 * KEEP + 10 - 2 * KEEP) as u64);
        assert!(text.contains(&format!(
            "[tinyo: {} bytes of output dropped here",
            o.dropped
        )));
    }
}
