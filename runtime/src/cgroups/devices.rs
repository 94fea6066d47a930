//! Device access control on cgroup v2: v2 has no `devices.allow`/`devices.deny` files; the
//! kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup instead. This
//! module turns the v1-style rules of [`super::Limits::devices`] into such a program (last
//! matching rule wins, default deny) and attaches it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV_X: u8 = 0xbf; // dst = src
const MOV_K: u8 = 0xb7; // dst = imm
const AND_K: u8 = 0x57; // dst &= imm
const RSH_K: u8 = 0x77; // dst >>= imm
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const EXIT: u8 = 0x95;

/// A parsed rule: allow?, type (0 = all, 1 block, 2 char), major, minor (None = any),
/// access bits (1 mknod, 2 read, 4 write).
struct Rule {
    allow: bool,
    kind: u32,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

fn parse(allow: bool, rule: &str) -> Option<Rule> {
    let mut f = rule.split_whitespace();
    let kind = match f.next()? {
        "a" => 0,
        "b" => 1,
        "c" => 2,
        _ => return None,
    };
    let (major, minor) = f.next().unwrap_or("*:*").split_once(':')?;
    let num = |s: &str| {
        if s == "*" {
            Ok(None)
        } else {
            s.parse().map(Some)
        }
    };
    let access = f.next().unwrap_or("rwm").chars().fold(0, |a, c| {
        a | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    });
    Some(Rule {
        allow,
        kind,
        major: num(major).ok()?,
        minor: num(minor).ok()?,
        access,
    })
}

/// The program for `rules` (v1 syntax, in order); None when everything is allowed.
fn program(rules: &[(bool, String)]) -> Option<Vec<Insn>> {
    let parsed: Vec<Rule> = rules.iter().filter_map(|(a, r)| parse(*a, r)).collect();
    let last_all = parsed.iter().rposition(|r| r.kind == 0 && r.access == 7);
    if let Some(i) = last_all {
        if parsed[i].allow && parsed[i + 1..].iter().all(|r| r.allow) {
            return None;
        }
    }
    // r1 = ctx {u32 access_type (type | access << 16), u32 major, u32 minor}.
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV_X, 3, 2, 0, 0),
        insn(AND_K, 3, 0, 0, 0xffff),
        insn(MOV_X, 4, 2, 0, 0),
        insn(RSH_K, 4, 0, 0, 16),
        insn(LDX_W, 5, 1, 4, 0),
        insn(LDX_W, 6, 1, 8, 0),
    ];
    // Last matching rule wins: test them from the last one back.
    for r in parsed.iter().rev() {
        let mut block = Vec::new();
        if r.kind != 0 {
            block.push((3, r.kind));
        }
        if let Some(m) = r.major {
            block.push((5, m));
        }
        if let Some(m) = r.minor {
            block.push((6, m));
        }
        let checks = block.len() + usize::from(r.access != 7) * 3;
        let total = checks + 2;
        let mut emitted = 0;
        for (reg, val) in block {
            emitted += 1;
            p.push(insn(JNE_K, reg, 0, (total - emitted) as i16, val as i32));
        }
        if r.access != 7 {
            // The requested access must be within the rule's: (access & !rule) == 0.
            p.push(insn(MOV_X, 7, 4, 0, 0));
            p.push(insn(AND_K, 7, 0, 0, (!r.access & 7) as i32));
            emitted += 3;
            p.push(insn(JNE_K, 7, 0, (total - emitted) as i16, 0));
        }
        p.push(insn(MOV_K, 0, 0, 0, i32::from(r.allow)));
        p.push(insn(EXIT, 0, 0, 0, 0));
        if checks == 0 {
            // Matches everything: what follows would be unreachable (the verifier refuses).
            return Some(p);
        }
    }
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    Some(p)
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> std::io::Result<i32> {
    // SAFETY: bpf(2) with a zero-padded attribute buffer of the size we pass.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as i32)
}

/// Loads the program for `rules` and attaches it to the cgroup folder `dir` (nothing to do
/// when everything is allowed).
pub fn apply(dir: &Path, rules: &[(bool, String)]) -> std::io::Result<()> {
    let Some(prog) = program(rules) else {
        return Ok(());
    };
    let license = c"Apache-2.0";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_CGROUP_DEVICE.to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(prog.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: bpf returned a new descriptor we own.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let cg = std::fs::File::open(dir)?;
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(cg.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog_fd.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&BPF_CGROUP_DEVICE.to_ne_bytes());
    attr[12..16].copy_from_slice(&BPF_F_ALLOW_MULTI.to_ne_bytes());
    bpf(BPF_PROG_ATTACH, &mut attr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs() {
        assert!(program(&[(true, "a *:* rwm".into())]).is_none());
        let p =
            program(&[(false, "a *:* rwm".into()), (true, "c 1:3 rwm".into())]).expect("a program");
        // Header (7) + allow-null block (3 checks + 2) + deny-all block (2), no default.
        assert_eq!(p.len(), 7 + 5 + 2);
        assert_eq!(p[7].code, JNE_K);
        assert_eq!(p[7].off, 4, "a failed check skips the rest of its block");
        let p = program(&[(true, "c 1:3 r".into())]).expect("a program");
        assert_eq!(
            p.len(),
            7 + 3 + 3 + 2 + 2,
            "access check, then the default deny"
        );
        assert!(parse(true, "x 1:2 r").is_none());
    }
}
