//! A payload's tar entries with their names read under a bound.
//!
//! The tar crate, left to itself, reads a GNU long-name record ('L', 'K') or
//! a pax record ('x', 'g') whole, whatever size its header claims, so a
//! bundle of a few hundred KiB could make it allocate gigabytes. Here the
//! archive is read raw: a long name longer than any path a bundle may hold
//! is refused unread, and pax records, which `pack` never writes (the
//! format is GNU headers, no pax records), are refused outright.

use std::borrow::Cow;
use std::io::{self, Read};

use crate::manifest::PATH_MAX_BYTES;

/// One entry with the path and link target its records gave it.
pub struct Named<'a, R: Read> {
    pub entry: tar::Entry<'a, R>,
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
}

/// The entries of `archive`, long names applied, under the bound.
pub fn entries<R: Read>(archive: &mut tar::Archive<R>) -> io::Result<Entries<'_, R>> {
    Ok(Entries {
        inner: archive.entries()?.raw(true),
    })
}

pub struct Entries<'a, R: Read> {
    inner: tar::Entries<'a, R>,
}

fn refuse(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl<'a, R: Read> Entries<'a, R> {
    fn next_named(&mut self) -> Option<io::Result<Named<'a, R>>> {
        let mut long_path: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let mut entry = match self.inner.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let kind = entry.header().entry_type();
            let slot = match kind {
                tar::EntryType::GNULongName => &mut long_path,
                tar::EntryType::GNULongLink => &mut long_link,
                tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => {
                    return Some(Err(refuse(
                        "it holds a pax record (bundles never hold pax records)".into(),
                    )))
                }
                _ => {
                    let path = match long_path {
                        Some(path) => path,
                        None => entry.header().path_bytes().into_owned(),
                    };
                    let link =
                        long_link.or_else(|| entry.header().link_name_bytes().map(Cow::into_owned));
                    return Some(Ok(Named { entry, path, link }));
                }
            };
            if slot.is_some() {
                return Some(Err(refuse(
                    "it holds two GNU long-name records for one entry".into(),
                )));
            }
            // The record holds the name and a NUL.
            let size = entry.header().size().unwrap_or(u64::MAX);
            if size > PATH_MAX_BYTES as u64 + 1 {
                return Some(Err(refuse(format!(
                    "it holds a GNU long-name record of {size} bytes, longer than the \
                     {PATH_MAX_BYTES} bytes a path in a bundle may have"
                ))));
            }
            let mut name = Vec::with_capacity(size as usize);
            if let Err(e) = (&mut entry).take(size).read_to_end(&mut name) {
                return Some(Err(e));
            }
            while name.last() == Some(&0) {
                name.pop();
            }
            *slot = Some(name);
        }
    }
}

impl<'a, R: Read> Iterator for Entries<'a, R> {
    type Item = io::Result<Named<'a, R>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_named()
    }
}
