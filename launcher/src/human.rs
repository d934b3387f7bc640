//! Quantities as people read them: sizes in binary units. A leaf: any
//! module that talks to people uses it, and it uses nothing of ours.

/// A size for people: 512 B, 12.3 MiB.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::size(0), "0 B");
        assert_eq!(super::size(1023), "1023 B");
        assert_eq!(super::size(1024), "1.0 KiB");
        assert_eq!(super::size(4_763_255), "4.5 MiB");
        assert_eq!(super::size(3 << 40), "3.0 TiB");
        assert_eq!(super::size(5 << 50), "5120.0 TiB");
    }
}
