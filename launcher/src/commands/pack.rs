//! `launcher pack STAGE --launcher BIN --out DIR [--build-info FILE]`.

use crate::build_info::BuildInfo;
use crate::cli::PackArgs;
use crate::digest::{sha256, to_hex};
use crate::pack;

pub fn pack(args: PackArgs) -> anyhow::Result<()> {
    let mtime = pack::source_date_epoch()?;
    // Read before anything is written: a bad description leaves no bundle
    // without its evidence.
    let info = args
        .build_info
        .as_deref()
        .map(BuildInfo::read)
        .transpose()?;
    let crates = match &info {
        Some(info) => info.crates("launcher")?,
        None => Vec::new(),
    };
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
    if let Some(info) = info {
        let launcher_sha256 = plan.launcher_sha256();
        let sbom = crate::sbom::render(m, &packed.sha256, &launcher_sha256, &info, &crates);
        let sbom_path = args.out.join(crate::sbom::SBOM_FILE);
        crate::atomic_file::write(&sbom_path, sbom.as_bytes(), 0o644)?;
        let statement = crate::provenance::statement(
            m,
            &packed.sha256,
            &info,
            crate::provenance::Byproducts {
                manifest_sha256: &to_hex(&sha256(&m.to_json())),
                sbom_sha256: &to_hex(&sha256(sbom.as_bytes())),
                launcher_sha256: &launcher_sha256,
            },
        );
        let prov_path = args.out.join(crate::provenance::PROVENANCE_FILE);
        let text = crate::provenance::render(&statement);
        crate::atomic_file::write(&prov_path, text.as_bytes(), 0o644)?;
        println!(
            "  {sbom_path}  CycloneDX 1.6, {} tools, {} crates",
            m.tools.len(),
            crates.len()
        );
        println!("  {prov_path}  SLSA provenance v1 (unsigned: `launcher sign` signs it)");
    }
    Ok(())
}
