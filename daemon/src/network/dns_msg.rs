//! The little of the DNS wire format (RFC 1035) the embedded resolver needs: reading the one
//! question of a query, and writing an answer with A and AAAA records (or an empty / error
//! answer).

use std::net::IpAddr;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Response code: the server failed.
pub const SERVFAIL: u8 = 2;
/// Response code: the server refuses to answer (names it does not forward).
pub const REFUSED: u8 = 5;
/// Seconds an answer may be cached (Docker's embedded DNS uses 600).
const TTL: u32 = 600;

/// The question of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The query id.
    pub id: u16,
    /// The query's flags (opcode and RD are echoed).
    pub flags: u16,
    /// The name asked for, lower-case, without the trailing dot.
    pub name: String,
    /// The record type.
    pub qtype: u16,
    /// Where the question section ends in the query.
    end: usize,
}

/// Reads the single question of a standard query; `None` for anything else.
pub fn parse(q: &[u8]) -> Option<Question> {
    if q.len() < 12 {
        return None;
    }
    let be = |i: usize| u16::from_be_bytes([q[i], q[i + 1]]);
    let flags = be(2);
    // A query (QR=0), standard opcode, exactly one question.
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || be(4) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        let label = q.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    q.get(i + 3)?;
    Some(Question {
        id: be(0),
        flags,
        name: labels.join("."),
        qtype,
        end: i + 4,
    })
}

/// An answer to `query` (whose question is `qn`): `addrs` as A (IPv4) and AAAA (IPv6)
/// records, with response code `rcode`.
pub fn answer(query: &[u8], qn: &Question, addrs: &[IpAddr], rcode: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(qn.end + addrs.len() * 28);
    out.extend_from_slice(&qn.id.to_be_bytes());
    // QR, AA, the query's opcode and RD, RA, the response code.
    let flags = 0x8000 | 0x0400 | (qn.flags & 0x7900) | 0x0080 | u16::from(rcode & 0xf);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..qn.end]);
    for a in addrs {
        // A pointer to the question's name at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        let (kind, data) = match a {
            IpAddr::V4(v4) => (TYPE_A, v4.octets().to_vec()),
            IpAddr::V6(v6) => (TYPE_AAAA, v6.octets().to_vec()),
        };
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn parses_and_answers() {
        let q = query("Web1.Example", TYPE_A);
        let qn = parse(&q).expect("a query");
        assert_eq!(qn.name, "web1.example");
        assert_eq!(qn.qtype, TYPE_A);
        let a = answer(&q, &qn, &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))], 0);
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0xf, 0);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 0, 0, 7]);
        let q = query("web1", TYPE_AAAA);
        let qn = parse(&q).expect("a query");
        let six: IpAddr = "fd42::7".parse().expect("ip");
        let a = answer(&q, &qn, &[six], 0);
        assert_eq!(
            &a[a.len() - 16..],
            &[0xfd, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]
        );
        assert_eq!(
            u16::from_be_bytes([a[a.len() - 26], a[a.len() - 25]]),
            TYPE_AAAA
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(&[1, 2, 3]).is_none());
        let mut q = query("x", TYPE_A);
        q.truncate(q.len() - 3);
        assert!(parse(&q).is_none());
        let mut r = query("x", TYPE_A);
        r[2] |= 0x80;
        assert!(parse(&r).is_none());
    }
}
