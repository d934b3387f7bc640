//! The app user: the account that owns Archy's containers, user units and
//! quadlet dir (`archipelago`, uid 1000 on a node). Looked up in
//! /etc/passwd once per question, here only.

use std::path::PathBuf;

/// Its login name on every Archy node.
pub const NAME: &str = "archipelago";

/// What /etc/passwd says of the app user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppUser {
    pub uid: u32,
    pub home: PathBuf,
}

/// The app user, when /etc/passwd has it.
pub fn lookup() -> Option<AppUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    find(&passwd, NAME)
}

/// The app user's home, or where Archy makes it when /etc/passwd does not
/// say.
pub fn home() -> PathBuf {
    lookup()
        .map(|u| u.home)
        .unwrap_or_else(|| PathBuf::from(format!("/home/{NAME}")))
}

/// `name`'s entry in passwd(5) text: name:password:uid:gid:gecos:home:shell.
fn find(passwd: &str, name: &str) -> Option<AppUser> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 || fields[0] != name {
            return None;
        }
        Some(AppUser {
            uid: fields[2].parse().ok()?,
            home: PathBuf::from(fields[5]),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::{find, AppUser};

    #[test]
    fn reads_uid_and_home_of_the_named_user_only() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      archipelago2:x:1001:1001::/home/other:/bin/sh\n\
                      archipelago:x:1000:1000:Archy apps:/var/lib/archipelago:/bin/bash\n";
        assert_eq!(
            find(passwd, "archipelago"),
            Some(AppUser {
                uid: 1000,
                home: "/var/lib/archipelago".into()
            })
        );
        assert_eq!(find(passwd, "nobody"), None);
        assert_eq!(
            find("archipelago:x:abc:1::/h:/bin/sh\n", "archipelago"),
            None
        );
        assert_eq!(find("archipelago:x:1000\n", "archipelago"), None);
    }
}
