//! The split record of a layer: what is needed to rebuild its uncompressed tar byte for byte
//! without keeping the tar itself (tar-split's idea). The tar's headers, extension records,
//! padding, end blocks and anything after them are kept as recorded bytes; the body of each
//! regular file is read back from the layer's unpacked folder in the storage driver
//! ([`berth_core::StorageDriver::diff_dir`]). A body the unpacked folder cannot give back —
//! its path written again, deleted or replaced later in the same tar, a `.wh.` name, a sparse
//! or unknown entry — is kept inline.
//!
//! The file (`layers/<chain hex>/tar-split`, little-endian):
//! ```text
//! "BERTHSPLIT\x01\n"
//! records:  'R' u32 len, bytes                       recorded bytes
//!           'F' u64 size, u64 sum, u32 len, path     a body read from the unpacked folder
//!           'E'                                      end of records
//! late bodies (bodies found at risk only after their record was written), concatenated
//! footer:   (u64 record number, u64 offset, u64 len) per late body,
//!           u64 late count, u64 tar length, u64 footer offset, "BSPLITND"
//! ```
//! `sum` is [`Sum`], a CRC-32 and the length, that tells which file changed on disk;
//! the whole rebuilt stream is checked against the diff_id as it is served ([`rebuild`]).

pub(crate) mod rebuild;
pub(crate) mod record;
mod risk;

/// The first bytes of a split record.
pub(crate) const MAGIC: &[u8; 12] = b"BERTHSPLIT\x01\n";
/// The last bytes of a split record.
pub(crate) const END_MAGIC: &[u8; 8] = b"BSPLITND";
/// The fixed part of the footer: late count, tar length, footer offset, end magic.
pub(crate) const TAIL_LEN: u64 = 8 * 3 + 8;
/// The record file's name in a layer's folder.
pub(crate) const FILE_NAME: &str = "tar-split";
/// A layer's whole kept tar (data roots written before split records, and drivers without
/// [`berth_core::StorageDriver::diff_dir`]).
pub(crate) const TAR_NAME: &str = "layer.tar";

/// A streaming checksum of a file body (CRC-32 with the length; not cryptographic: it names
/// the file that changed, the diff_id proves the stream).
#[derive(Default)]
pub(crate) struct Sum {
    crc: flate2::Crc,
    len: u64,
}

impl Sum {
    pub(crate) fn new() -> Sum {
        Sum::default()
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.crc.update(data);
        self.len += data.len() as u64;
    }

    pub(crate) fn finish(&self) -> u64 {
        (u64::from(self.crc.sum()) << 32) ^ self.len
    }
}

#[cfg(test)]
mod tests {
    use super::Sum;

    #[test]
    fn sum_ignores_chunking_and_sees_changes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Sum::new();
        whole.update(&data);
        for step in [1, 3, 31, 32, 33, 4096] {
            let mut s = Sum::new();
            for c in data.chunks(step) {
                s.update(c);
            }
            assert_eq!(s.finish(), whole.finish(), "step {step}");
        }
        let mut changed = data.clone();
        changed[5000] ^= 1;
        let mut s = Sum::new();
        s.update(&changed);
        assert_ne!(s.finish(), whole.finish());
        let mut short = Sum::new();
        short.update(&data[..9999]);
        assert_ne!(short.finish(), whole.finish());
    }
}
