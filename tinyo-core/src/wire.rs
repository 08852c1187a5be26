//! A tiny length-prefixed binary encoding for what crosses between processes (the report
//! pipe, the shared result page, the zygote socket). Both ends are the same binary, so
//! there is no versioning; every read is bounds-checked, and garbage decodes to `None`.

use std::path::PathBuf;

/// Appends fields to a buffer.
#[derive(Default, Debug)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// A little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A little-endian `i32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        let n = v.len().min(u32::MAX as usize);
        self.buf.extend_from_slice(&v[..n]);
        self
    }
    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    /// A path, as bytes.
    pub fn path(&mut self, v: &std::path::Path) -> &mut Self {
        use std::os::unix::ffi::OsStrExt;
        self.bytes(v.as_os_str().as_bytes())
    }
    /// The encoded bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Reads fields back; every method returns `None` past the end.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Read from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    /// A little-endian `i32`.
    pub fn i32(&mut self) -> Option<i32> {
        self.take(4)?.try_into().ok().map(i32::from_le_bytes)
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A length-prefixed string (lossy UTF-8).
    pub fn string(&mut self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    /// A path.
    pub fn path(&mut self) -> Option<PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        self.bytes()
            .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(b)))
    }
    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let bytes = Writer::new()
            .u8(7)
            .i32(-3)
            .str("héllo")
            .path("/a/b".as_ref())
            .finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.i32(), Some(-3));
        assert_eq!(r.string().as_deref(), Some("héllo"));
        assert_eq!(r.path(), Some(PathBuf::from("/a/b")));
        assert!(r.is_empty());
        let mut short = Reader::new(&bytes[..4]);
        assert_eq!(short.u8(), Some(7));
        assert_eq!(short.i32(), None);
    }
}
