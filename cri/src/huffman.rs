//! HPACK's Huffman code (RFC 7541, Appendix B), decoding only: the bit length of each byte's
//! code — the code is canonical, so the codes themselves follow from the lengths. Used by
//! [`crate::authority`] to read a header value the client compressed.

/// The code length, in bits, of each byte value (RFC 7541 Appendix B; EOS is 30 ones).
const LENGTHS: [u8; 256] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
];

/// Why a Huffman string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid Huffman-coded header string")]
pub struct HuffmanError;

/// A canonical decoder: per code length, the first code, how many codes and where their
/// symbols start in `symbols` (sorted by length, then value).
struct Decoder {
    first: [u32; 31],
    count: [u32; 31],
    start: [usize; 31],
    symbols: [u8; 256],
}

fn decoder() -> &'static Decoder {
    static D: std::sync::OnceLock<Decoder> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let mut order: Vec<u8> = (0..=255).collect();
        order.sort_by_key(|&s| (LENGTHS[s as usize], s));
        let mut d = Decoder {
            first: [0; 31],
            count: [0; 31],
            start: [0; 31],
            symbols: [0; 256],
        };
        let (mut code, mut prev) = (0u32, LENGTHS[order[0] as usize]);
        for (i, &s) in order.iter().enumerate() {
            let len = LENGTHS[s as usize];
            if i > 0 {
                code = (code + 1) << (len - prev);
            }
            let l = len as usize;
            if d.count[l] == 0 {
                d.first[l] = code;
                d.start[l] = i;
            }
            d.count[l] += 1;
            d.symbols[i] = s;
            prev = len;
        }
        d
    })
}

/// Decodes `bytes`; the padding at the end must be at most 7 one bits, as the RFC says.
pub fn decode(bytes: &[u8]) -> Result<Vec<u8>, HuffmanError> {
    let d = decoder();
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5);
    let (mut acc, mut len) = (0u32, 0usize);
    for b in bytes {
        for shift in (0..8).rev() {
            acc = (acc << 1) | u32::from((b >> shift) & 1);
            len += 1;
            if len > 30 {
                return Err(HuffmanError);
            }
            if d.count[len] > 0 && acc >= d.first[len] && acc - d.first[len] < d.count[len] {
                out.push(d.symbols[d.start[len] + (acc - d.first[len]) as usize]);
                (acc, len) = (0, 0);
            }
        }
    }
    if len > 7 || acc != (1u32 << len) - 1 {
        return Err(HuffmanError);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_rfc_examples() {
        // RFC 7541 C.4.1: "www.example.com".
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(decode(&www).as_deref(), Ok(&b"www.example.com"[..]));
        // C.4.2: "no-cache".
        let nc = [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        assert_eq!(decode(&nc).as_deref(), Ok(&b"no-cache"[..]));
        // Padding that is not all ones, or longer than 7 bits, is refused.
        assert!(decode(&[0x00]).is_err());
        assert!(decode(&[0xff, 0xff]).is_err());
    }
}
