//! The example packs in `examples/packs/` are the demo plant's packs written out: this test
//! fails when the code and the committed files differ. `DOPPEL_UPDATE_PACKS=1 cargo test -p
//! doppel-sim --test packs` rewrites the files from the code.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use doppel_model::Catalog;
use doppel_sim::{Pack, Plant};

fn packs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/packs")
}

/// The text of a pack file: pretty JSON and a final newline.
fn file_text(pack: &Pack) -> String {
    serde_json::to_string_pretty(pack).unwrap() + "\n"
}

#[test]
fn committed_packs_are_what_the_demo_plant_produces() {
    let packs = Plant::demo(7).packs();
    let names: Vec<_> = packs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["manufacturing", "buildings", "healthcare"]);
    let update = std::env::var_os("DOPPEL_UPDATE_PACKS").is_some();
    let mut stale = Vec::new();
    for pack in &packs {
        let path = packs_dir().join(format!("{}.json", pack.name));
        let want = file_text(pack);
        if update {
            std::fs::create_dir_all(packs_dir()).unwrap();
            std::fs::write(&path, &want).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from Plant::demo().packs(); regenerate with \
         DOPPEL_UPDATE_PACKS=1 cargo test -p doppel-sim --test packs"
    );
}

#[test]
fn each_pack_loads_on_its_own_and_together_they_are_the_plant() {
    let plant = Plant::demo(7);
    let packs = plant.packs();
    let mut twins = 0;
    for pack in &packs {
        // In file order, one by one, as the README's curl loop sends them.
        let mut c = Catalog::new();
        for m in &pack.models {
            c.put_model(m.clone()).unwrap();
        }
        for t in &pack.twins {
            c.put_twin(t.clone())
                .unwrap_or_else(|e| panic!("{}: {}: {e}", pack.name, t.id));
        }
        twins += pack.twins.len();
        let back: Pack = serde_json::from_str(&file_text(pack)).unwrap();
        assert_eq!(&back, pack);
    }
    assert_eq!(twins, plant.twins().len());
    let manufacturing = &packs[0];
    let ids: Vec<_> = manufacturing.twins.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        ["site-1", "line-1", "line-2", "pump-1", "pump-2", "pump-3", "pump-4"]
    );
}
