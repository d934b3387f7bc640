//! Just enough ELF reading to tell a static executable from one that needs a
//! dynamic loader and shared libraries a bare node does not have.
//!
//! A file is dynamically linked when it names a program interpreter
//! (`PT_INTERP`) or lists shared libraries (`DT_NEEDED`). A static-pie binary
//! has a `PT_DYNAMIC` segment but neither, and counts as static. Its run-time
//! search path (`DT_RPATH`, `DT_RUNPATH`) is read too: a path the loader
//! would search is a live reference, whatever else the file holds.

pub const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_LOAD: u32 = 1;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// How an ELF file is linked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Linkage {
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    /// `DT_RPATH` and `DT_RUNPATH` strings, as written (colon-separated lists).
    pub search_path: Vec<String>,
}

impl Linkage {
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }

    /// "interpreter X; needs a, b" for an error message.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(interp) = &self.interpreter {
            parts.push(format!("interpreter {interp}"));
        }
        if !self.needed.is_empty() {
            parts.push(format!("needs {}", self.needed.join(", ")));
        }
        parts.join("; ")
    }
}

pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(&ELF_MAGIC)
}

struct Reader<'a> {
    bytes: &'a [u8],
    wide: bool,
    big_endian: bool,
}

impl Reader<'_> {
    fn uint(&self, at: u64, size: usize) -> Option<u64> {
        let start = usize::try_from(at).ok()?;
        let raw = self.bytes.get(start..start.checked_add(size)?)?;
        let mut value = 0u64;
        for i in 0..size {
            let byte = if self.big_endian {
                raw[i]
            } else {
                raw[size - 1 - i]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    }

    fn half(&self, at: u64) -> Option<u64> {
        self.uint(at, 2)
    }

    fn word(&self, at: u64) -> Option<u64> {
        self.uint(at, 4)
    }

    /// A native-width field: 8 bytes in ELF64, 4 in ELF32.
    fn addr(&self, at: u64) -> Option<u64> {
        self.uint(at, if self.wide { 8 } else { 4 })
    }

    fn c_string(&self, at: u64) -> Option<String> {
        let start = usize::try_from(at).ok()?;
        let rest = self.bytes.get(start..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Reads an ELF file's linkage. `Err` names what is malformed.
pub fn linkage(bytes: &[u8]) -> Result<Linkage, String> {
    if !is_elf(bytes) {
        return Err("not an ELF file".into());
    }
    let wide = match bytes.get(4) {
        Some(1) => false,
        Some(2) => true,
        other => return Err(format!("unknown ELF class {other:?}")),
    };
    let big_endian = match bytes.get(5) {
        Some(1) => false,
        Some(2) => true,
        other => return Err(format!("unknown ELF byte order {other:?}")),
    };
    let r = Reader {
        bytes,
        wide,
        big_endian,
    };
    let truncated = || "truncated ELF header".to_string();
    let (phoff, phentsize, phnum) = if wide {
        (r.addr(0x20), r.half(0x36), r.half(0x38))
    } else {
        (r.addr(0x1c), r.half(0x2a), r.half(0x2c))
    };
    let (phoff, phentsize, phnum) = (
        phoff.ok_or_else(truncated)?,
        phentsize.ok_or_else(truncated)?,
        phnum.ok_or_else(truncated)?,
    );

    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let segment = if wide {
            Segment {
                kind: r.word(at).map(|v| v as u32).ok_or_else(truncated)?,
                offset: r.addr(at + 8).ok_or_else(truncated)?,
                vaddr: r.addr(at + 16).ok_or_else(truncated)?,
                filesz: r.addr(at + 32).ok_or_else(truncated)?,
            }
        } else {
            Segment {
                kind: r.word(at).map(|v| v as u32).ok_or_else(truncated)?,
                offset: r.addr(at + 4).ok_or_else(truncated)?,
                vaddr: r.addr(at + 8).ok_or_else(truncated)?,
                filesz: r.addr(at + 16).ok_or_else(truncated)?,
            }
        };
        segments.push(segment);
    }

    let mut found = Linkage::default();
    for seg in segments.iter().filter(|s| s.kind == PT_INTERP) {
        found.interpreter = Some(
            r.c_string(seg.offset)
                .unwrap_or_else(|| "(unreadable)".into()),
        );
    }
    for seg in segments.iter().filter(|s| s.kind == PT_DYNAMIC) {
        let entry_size = if wide { 16 } else { 8 };
        let mut needed_offsets = Vec::new();
        let mut search_offsets = Vec::new();
        let mut strtab = None;
        let mut at = seg.offset;
        while at + entry_size <= seg.offset + seg.filesz {
            let tag = r.addr(at).ok_or_else(truncated)?;
            let value = r.addr(at + entry_size / 2).ok_or_else(truncated)?;
            match tag {
                DT_NULL => break,
                DT_NEEDED => needed_offsets.push(value),
                DT_RPATH | DT_RUNPATH => search_offsets.push(value),
                DT_STRTAB => strtab = Some(value),
                _ => {}
            }
            at += entry_size;
        }
        // DT_STRTAB is a virtual address: find the file offset through PT_LOAD.
        let strtab_offset = strtab.and_then(|addr| {
            segments
                .iter()
                .find(|s| s.kind == PT_LOAD && s.vaddr <= addr && addr < s.vaddr + s.filesz)
                .map(|s| s.offset + (addr - s.vaddr))
        });
        for offset in needed_offsets {
            let name = strtab_offset
                .and_then(|base| r.c_string(base + offset))
                .unwrap_or_else(|| "(unnamed library)".into());
            found.needed.push(name);
        }
        for offset in search_offsets {
            let path = strtab_offset
                .and_then(|base| r.c_string(base + offset))
                .unwrap_or_else(|| "(unreadable)".into());
            found.search_path.push(path);
        }
    }
    Ok(found)
}
