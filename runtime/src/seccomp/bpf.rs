//! Compiles an OCI `linux.seccomp` object to a classic BPF program, as libseccomp does for
//! runc, for the native runtime and `docker exec`. Layout: the ABI (`seccomp_data.arch`) picks
//! one section per listed architecture berth has a syscall table for; any other ABI gets
//! ENOSYS (so do x32 calls on x86_64). In a section, a number above the highest one berth
//! knows gets ENOSYS when the default refuses (runc's rule: a libc probing a call newer than
//! the profile falls back instead of failing with EPERM); then come the named calls in number
//! order, in chunks a number above them skips whole, one block per call testing its rules —
//! argument conditions compared as 64-bit values, the most restrictive action first, the
//! first rule that holds decides — and falling back to the default action.

use super::syscalls::Arch;
use super::SeccompError;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
/// Allow the call.
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// Calls per chunk of a section (see [`section`]).
const CHUNK: usize = 16;

/// x32 calls on x86_64 carry this bit in their number.
const X32_BIT: u32 = 0x4000_0000;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// `seccomp_data` offsets: nr, arch, args[i] (low word first: little-endian ABIs only).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg(i: u32, high: bool) -> u32 {
    16 + 8 * i + if high { 4 } else { 0 }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Oci {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    syscalls: Option<Vec<OciRule>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciRule {
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<OciArg>>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct OciArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: String,
}

/// The return value of `action`; `errno` for ERRNO and TRACE (EPERM when absent).
fn action(name: &str, errno: Option<u32>) -> Result<u32, SeccompError> {
    let data = errno.unwrap_or(libc::EPERM as u32) & 0xffff;
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_ERRNO" => RET_ERRNO | data,
        "SCMP_ACT_TRACE" => RET_TRACE | data,
        "SCMP_ACT_LOG" => RET_LOG,
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        other => return Err(SeccompError::Unsupported(format!("seccomp action {other}"))),
    })
}

/// How restrictive an action is (higher first), as libseccomp orders them.
fn rank(ret: u32) -> u32 {
    match ret & 0xffff_0000 {
        RET_KILL_PROCESS => 7,
        RET_KILL_THREAD => 6,
        RET_TRAP => 5,
        RET_ERRNO => 4,
        RET_TRACE => 3,
        RET_LOG => 2,
        _ => 1,
    }
}

/// A jump target inside one rule: an offset, or the rule's end (the condition failed).
#[derive(Clone, Copy)]
enum J {
    To(u8),
    Fail,
}

struct Ins {
    code: u16,
    k: u32,
    jt: J,
    jf: J,
}

fn ld(k: u32) -> Ins {
    Ins {
        code: LD_W_ABS,
        k,
        jt: J::To(0),
        jf: J::To(0),
    }
}

fn jmp(code: u16, k: u32, jt: J, jf: J) -> Ins {
    Ins { code, k, jt, jf }
}

/// Code for one argument condition: falls through when it holds, jumps to `Fail` otherwise.
fn arg_code(a: &OciArg, out: &mut Vec<Ins>) -> Result<(), SeccompError> {
    if a.index > 5 {
        return Err(SeccompError::Invalid(format!(
            "seccomp argument index {} out of range",
            a.index
        )));
    }
    let (hi, lo) = (off_arg(a.index, true), off_arg(a.index, false));
    let (vh, vl) = ((a.value >> 32) as u32, a.value as u32);
    let ok = J::To(0);
    match a.op.as_str() {
        "SCMP_CMP_EQ" => out.extend([
            ld(hi),
            jmp(JEQ_K, vh, ok, J::Fail),
            ld(lo),
            jmp(JEQ_K, vl, ok, J::Fail),
        ]),
        "SCMP_CMP_NE" => out.extend([
            ld(hi),
            jmp(JEQ_K, vh, ok, J::To(2)),
            ld(lo),
            jmp(JEQ_K, vl, J::Fail, ok),
        ]),
        "SCMP_CMP_MASKED_EQ" => {
            let want = a.value_two.unwrap_or(0);
            out.extend([
                ld(hi),
                jmp(AND_K, vh, ok, ok),
                jmp(JEQ_K, (want >> 32) as u32, ok, J::Fail),
                ld(lo),
                jmp(AND_K, vl, ok, ok),
                jmp(JEQ_K, want as u32, ok, J::Fail),
            ])
        }
        // Greater: the high word decides unless equal, then the low word.
        "SCMP_CMP_GT" | "SCMP_CMP_GE" => out.extend([
            ld(hi),
            jmp(JGT_K, vh, J::To(3), ok),
            jmp(JEQ_K, vh, ok, J::Fail),
            ld(lo),
            if a.op == "SCMP_CMP_GT" {
                jmp(JGT_K, vl, ok, J::Fail)
            } else {
                jmp(JGE_K, vl, ok, J::Fail)
            },
        ]),
        "SCMP_CMP_LT" | "SCMP_CMP_LE" => out.extend([
            ld(hi),
            jmp(JGE_K, vh, ok, J::To(3)),
            jmp(JEQ_K, vh, ok, J::Fail),
            ld(lo),
            if a.op == "SCMP_CMP_LT" {
                jmp(JGE_K, vl, J::Fail, ok)
            } else {
                jmp(JGT_K, vl, J::Fail, ok)
            },
        ]),
        other => {
            return Err(SeccompError::Unsupported(format!(
                "seccomp operator {other}"
            )))
        }
    }
    Ok(())
}

fn resolve(j: J, at: usize, len: usize) -> Result<u8, SeccompError> {
    match j {
        J::To(n) => Ok(n),
        J::Fail => u8::try_from(len - at - 1)
            .map_err(|_| SeccompError::Invalid("seccomp rule too long".into())),
    }
}

/// One rule: its conditions then `ret`; a failed condition lands after the `ret`.
fn rule_code(args: &[OciArg], ret: u32) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut ins = Vec::new();
    for a in args {
        arg_code(a, &mut ins)?;
    }
    ins.push(jmp(RET_K, ret, J::To(0), J::To(0)));
    let len = ins.len();
    ins.iter()
        .enumerate()
        .map(|(i, x)| {
            Ok(libc::sock_filter {
                code: x.code,
                jt: resolve(x.jt, i, len)?,
                jf: resolve(x.jf, i, len)?,
                k: x.k,
            })
        })
        .collect()
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The section of one ABI (entered with nothing loaded).
fn section(arch: Arch, p: &Oci, default: u32) -> Result<Vec<libc::sock_filter>, SeccompError> {
    // Rules by number, in profile order; calls this ABI lacks are skipped, as runc does.
    let mut by_nr: BTreeMap<u32, Vec<(u32, Vec<OciArg>)>> = BTreeMap::new();
    let mut order: Vec<u32> = Vec::new();
    for r in p.syscalls.iter().flatten() {
        let ret = action(&r.action, r.errno_ret)?;
        for n in &r.names {
            let Some(nr) = arch.nr(n) else { continue };
            let e = by_nr.entry(nr).or_default();
            if e.is_empty() {
                order.push(nr);
            }
            e.push((ret, r.args.clone().unwrap_or_default()));
        }
    }
    let mut out = vec![stmt(LD_W_ABS, OFF_NR)];
    if arch == Arch::X86_64 {
        out.push(jump(JGE_K, X32_BIT, 0, 1));
        out.push(stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32));
    }
    if default != RET_ALLOW {
        out.push(jump(JGT_K, arch.max_nr(), 0, 1));
        out.push(stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32));
    }
    // One self-contained block per call (it always ends in `ret`), in number order.
    let mut blocks: Vec<(u32, Vec<libc::sock_filter>)> = Vec::new();
    for nr in order {
        let mut rules = by_nr.remove(&nr).unwrap_or_default();
        // Most restrictive first; among equals, unconditional first (it settles the call).
        rules.sort_by_key(|(ret, args)| (std::cmp::Reverse(rank(*ret)), !args.is_empty()));
        let mut block = Vec::new();
        let mut settled = false;
        for (ret, args) in &rules {
            block.extend(rule_code(args, *ret)?);
            if args.is_empty() {
                settled = true;
                break;
            }
        }
        if !settled {
            block.push(stmt(RET_K, default));
        }
        let skip = u8::try_from(block.len())
            .map_err(|_| SeccompError::Invalid("too many seccomp rules for one call".into()))?;
        let mut code = vec![jump(JEQ_K, nr, 0, skip)];
        code.extend(block);
        blocks.push((nr, code));
    }
    blocks.sort_by_key(|(nr, _)| *nr);
    // Chunks of CHUNK calls, each skipped whole (`jgt` its highest number, then `ja`) when
    // the number is above it: a call costs a few dozen instructions, not a walk of the list.
    for chunk in blocks.chunks(CHUNK) {
        let max = chunk.last().map(|(nr, _)| *nr).unwrap_or(0);
        let len: usize = chunk.iter().map(|(_, c)| c.len()).sum::<usize>() + 1;
        out.push(jump(JGT_K, max, 0, 1));
        out.push(stmt(JA, len as u32));
        for (_, code) in chunk {
            out.extend_from_slice(code);
        }
        out.push(stmt(RET_K, default));
    }
    out.push(stmt(RET_K, default));
    Ok(out)
}

/// Compiles `profile` (OCI `linux.seccomp`) for the ABIs the native kernel serves.
pub fn compile(profile: &Value) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let p: Oci =
        serde_json::from_value(profile.clone()).map_err(|e| SeccompError::Decode(e.to_string()))?;
    let default = action(&p.default_action, p.default_errno_ret)?;
    let listed: Vec<Arch> = match &p.architectures {
        Some(a) if !a.is_empty() => a.iter().filter_map(|s| Arch::from_scmp(s)).collect(),
        _ => vec![Arch::native()],
    };
    let arches: Vec<Arch> = Arch::served()
        .iter()
        .copied()
        .filter(|a| listed.contains(a))
        .collect();
    let sections = arches
        .iter()
        .map(|a| section(*a, &p, default))
        .collect::<Result<Vec<_>, _>>()?;
    // Dispatch: per ABI `jeq arch` over a long jump (`ja`) to its section.
    let mut out = vec![stmt(LD_W_ABS, OFF_ARCH)];
    let n = sections.len();
    let mut before = 0usize;
    for (i, a) in arches.iter().enumerate() {
        out.push(jump(JEQ_K, a.audit(), 0, 1));
        // After this `ja`: the remaining dispatch pairs, the bad-ABI ret, earlier sections.
        let skip = 2 * (n - i - 1) + 1 + before;
        out.push(stmt(JA, skip as u32));
        before += sections[i].len();
    }
    out.push(stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32));
    for s in sections {
        out.extend(s);
    }
    if out.len() > 4096 {
        return Err(SeccompError::Invalid(format!(
            "seccomp program of {} instructions (the kernel takes 4096)",
            out.len()
        )));
    }
    Ok(out)
}
