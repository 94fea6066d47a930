//! A 222-byte static x86-64 Linux program that prints `Effective uid: N` (its `geteuid()`) and
//! exits 0 — the whole behaviour of the `nonewprivs` e2e image critest runs. Installed
//! setuid-root, it shows whether the runtime honoured `no_new_privs` (`Effective uid: 1000`)
//! or let the setuid bit act (`Effective uid: 0`). busybox cannot stand in: it drops setuid
//! privileges for applets such as `id`. Made here from its machine code, so no compiler or
//! download is needed.

/// The program's machine code, loaded at [`BASE`] + [`CODE_OFFSET`]. Assembled (GNU as, Intel
/// syntax) from:
///
/// ```text
/// _start: mov eax, 107          ; geteuid
///         syscall
///         lea rdi, [rsp-1]       ; build "Effective uid: N\n" downwards below the stack top
///         mov byte ptr [rdi], 10
///         mov ecx, 10
/// 1:      xor edx, edx           ; one decimal digit per round
///         div ecx
///         add dl, 48
///         dec rdi
///         mov [rdi], dl
///         test eax, eax
///         jnz 1b
///         sub rdi, 15            ; room for the prefix
///         mov r8, rdi
///         lea rsi, [rip+msg]
///         mov ecx, 15
///         rep movsb
///         mov rsi, r8            ; write(1, start, rsp - start): one write, one log line
///         mov rdx, rsp
///         sub rdx, r8
///         mov eax, 1
///         mov edi, 1
///         syscall
///         mov eax, 60            ; exit(0)
///         xor edi, edi
///         syscall
/// msg:    .ascii "Effective uid: "
/// ```
const CODE: [u8; 102] = [
    0xb8, 0x6b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8d, 0x7c, 0x24, 0xff, 0xc6, 0x07, 0x0a, 0xb9,
    0x0a, 0x00, 0x00, 0x00, 0x31, 0xd2, 0xf7, 0xf1, 0x80, 0xc2, 0x30, 0x48, 0xff, 0xcf, 0x88, 0x17,
    0x85, 0xc0, 0x75, 0xf0, 0x48, 0x83, 0xef, 0x0f, 0x49, 0x89, 0xf8, 0x48, 0x8d, 0x35, 0x25, 0x00,
    0x00, 0x00, 0xb9, 0x0f, 0x00, 0x00, 0x00, 0xf3, 0xa4, 0x4c, 0x89, 0xc6, 0x48, 0x89, 0xe2, 0x4c,
    0x29, 0xc2, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xbf, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xb8, 0x3c,
    0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05, 0x45, 0x66, 0x66, 0x65, 0x63, 0x74, 0x69, 0x76, 0x65,
    0x20, 0x75, 0x69, 0x64, 0x3a, 0x20,
];

/// Where the file is mapped (the classic non-PIE base).
const BASE: u64 = 0x40_0000;
/// The ELF header (64 bytes) and one program header (56 bytes) come first.
const CODE_OFFSET: u64 = 64 + 56;

/// The ELF64 executable: header, one read+execute `PT_LOAD` of the whole file, the code.
pub fn effective_uid_elf() -> Vec<u8> {
    let size = CODE_OFFSET + CODE.len() as u64;
    let mut f = Vec::with_capacity(size as usize);
    // e_ident: magic, ELFCLASS64, little-endian, version 1, System V ABI, padding.
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    f.extend_from_slice(&62u16.to_le_bytes()); // e_machine: EM_X86_64
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&(BASE + CODE_OFFSET).to_le_bytes()); // e_entry
    f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
                                              // The program header: PT_LOAD, PF_R|PF_X, the whole file at BASE.
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags
    f.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    f.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    f.extend_from_slice(&size.to_le_bytes()); // p_filesz
    f.extend_from_slice(&size.to_le_bytes()); // p_memsz
    f.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    f.extend_from_slice(&CODE);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn prints_the_effective_uid() {
        if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            return;
        }
        let dir = std::env::temp_dir().join(format!("berth-euid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let bin = dir.join("euid");
        std::fs::write(&bin, effective_uid_elf()).expect("write");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let out = std::process::Command::new(&bin).output().expect("run");
        std::fs::remove_dir_all(&dir).ok();
        // SAFETY: geteuid(2) has no preconditions and touches no memory.
        let euid = unsafe { libc_geteuid() };
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("Effective uid: {euid}\n")
        );
    }

    extern "C" {
        #[link_name = "geteuid"]
        fn libc_geteuid() -> u32;
    }
}
