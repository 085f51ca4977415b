//! Compiles `proto/gobgp.proto` (bgpgen's minimal, wire-compatible subset of GoBGP's `apipb`
//! API) into a gRPC client with protox (pure Rust, no `protoc` and no system package needed).

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = Path::new("proto");
    let files = ["proto/gobgp.proto"];
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    // protox bundles google/protobuf/{any,empty,timestamp}.proto and, through `compile`, puts the
    // imports into the descriptor set so that the well-known types are generated too (prost-types
    // is not a dependency of bgpgen).
    let fds = protox::compile(files, [proto_dir])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_well_known_types(true)
        .compile_fds(fds)?;
    Ok(())
}
