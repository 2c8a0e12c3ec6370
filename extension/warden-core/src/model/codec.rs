//! Little-endian encoding of the model payload: plain arrays, no self-description, so the
//! file stays small and decoding a hostile file can only fail with [`ModelError::Truncated`]
//! or a length check, never allocate without bound.

use super::ModelError;

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `f32`.
    pub fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A length-prefixed array of f32.
    pub fn f32s(&mut self, vs: &[f32]) {
        self.len(vs.len());
        for v in vs {
            self.f32(*v);
        }
    }

    /// A length-prefixed array of u32.
    pub fn u32s(&mut self, vs: &[u32]) {
        self.len(vs.len());
        for v in vs {
            self.u32(*v);
        }
    }

    /// A length-prefixed array of u16.
    pub fn u16s(&mut self, vs: &[u16]) {
        self.len(vs.len());
        for v in vs {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn len(&mut self, n: usize) {
        // Payload arrays are far below 4 Gi entries (the file is capped at a few MB).
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads values back, failing on a short buffer.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        if self.buf.len() < n {
            return Err(ModelError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const K: usize>(&mut self) -> Result<[u8; K], ModelError> {
        let mut out = [0u8; K];
        out.copy_from_slice(self.take(K)?);
        Ok(out)
    }

    /// The next `u32`.
    pub fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// The next `f32`.
    pub fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    /// Length prefix of an array of `width`-byte items, checked against what is left.
    fn len(&mut self, width: usize) -> Result<usize, ModelError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(width) > self.buf.len() {
            return Err(ModelError::Truncated);
        }
        Ok(n)
    }

    /// A length-prefixed list of `f32`.
    pub fn f32s(&mut self) -> Result<Vec<f32>, ModelError> {
        let n = self.len(4)?;
        (0..n).map(|_| self.f32()).collect()
    }

    /// A length-prefixed list of `u32`.
    pub fn u32s(&mut self) -> Result<Vec<u32>, ModelError> {
        let n = self.len(4)?;
        (0..n).map(|_| self.u32()).collect()
    }

    /// A length-prefixed list of `u16`.
    pub fn u16s(&mut self) -> Result<Vec<u16>, ModelError> {
        let n = self.len(2)?;
        (0..n)
            .map(|_| Ok(u16::from_le_bytes(self.array()?)))
            .collect()
    }

    /// The payload must be consumed exactly: trailing bytes mean a different layout.
    pub fn end(&self) -> Result<(), ModelError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Invalid(
                "trailing bytes after the payload".into(),
            ))
        }
    }
}
