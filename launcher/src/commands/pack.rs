//! `launcher pack STAGE --launcher BIN --out DIR`.

use crate::cli::PackArgs;
use crate::pack;

pub fn pack(args: PackArgs) -> anyhow::Result<()> {
    let mtime = pack::source_date_epoch()?;
    let plan = pack::plan(&args.stage, &args.launcher, mtime)?;
    let packed = plan.write(&args.out)?;
    let m = &plan.manifest;
    println!(
        "packed {} {}: {} entries, {} unpacked",
        m.name,
        m.version,
        m.files.len(),
        crate::human::size(m.unpacked_bytes())
    );
    println!(
        "  {}  {} (payload {})",
        packed.bundle,
        crate::human::size(packed.size),
        crate::human::size(packed.payload_size)
    );
    println!("  {}", packed.manifest);
    println!("  {}  sha256 {}", packed.sums, packed.sha256);
    Ok(())
}
