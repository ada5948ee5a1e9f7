//! A minimal protobuf wire reader: it walks the top level of a request and keeps only the few
//! string fields the policy needs, skipping everything else (payloads, commands, headers)
//! without decoding or copying it. Semantics match a full protobuf decode for what it keeps:
//! the last occurrence of a scalar wins and repeated occurrences of an embedded message merge.

use crate::DecodeError;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// The next field's number and wire type.
    pub(crate) fn key(&mut self) -> Result<(u32, u8), DecodeError> {
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(DecodeError::BadFieldNumber);
        }
        Ok((number as u32, wire))
    }

    /// The payload of a length-delimited field.
    pub(crate) fn bytes(&mut self, field: u32, wire: u8) -> Result<&'a [u8], DecodeError> {
        if wire != LEN {
            return Err(DecodeError::WireType { field, wire });
        }
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
        let end = self.pos.checked_add(len).ok_or(DecodeError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn uint(&mut self, field: u32, wire: u8) -> Result<u64, DecodeError> {
        if wire != VARINT {
            return Err(DecodeError::WireType { field, wire });
        }
        self.varint()
    }

    pub(crate) fn string(&mut self, field: u32, wire: u8) -> Result<&'a str, DecodeError> {
        let bytes = self.bytes(field, wire)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::Utf8 { field })
    }

    pub(crate) fn skip(&mut self, field: u32, wire: u8) -> Result<(), DecodeError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.advance(8),
            FIXED32 => self.advance(4),
            LEN => self.bytes(field, wire).map(drop),
            // Groups (3, 4) are proto2-only; Temporal's protos have none.
            _ => Err(DecodeError::WireType { field, wire }),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        if end > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        self.pos = end;
        Ok(())
    }
}
