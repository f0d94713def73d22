//! Demo packs: a plant's models and twins split by industry (manufacturing, buildings,
//! healthcare), in the order the doppel API accepts them. `doppel demo` loads them through the
//! HTTP API, and `examples/packs/*.json` are these packs written out, so the examples can never
//! drift from what the demo runs.

use doppel_model::{AssetModel, Twin};
use serde::{Deserialize, Serialize};

use crate::Plant;

/// Models and twins of one industry, ready to `PUT` one by one: every model before the twins,
/// parents and relation targets before the twins that point at them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// File name and short name: `manufacturing`, `buildings`, `healthcare`.
    pub name: String,
    pub description: String,
    pub models: Vec<AssetModel>,
    pub twins: Vec<Twin>,
}

/// The industry of a hierarchy, by the model of its root twin.
fn industry(root_model: &str) -> (&str, &'static str) {
    match root_model {
        "site" => (
            "manufacturing",
            "A production site with cooling-water lines of centrifugal pumps (site → line → pump)",
        ),
        "building" => (
            "buildings",
            "An office building with a chiller and air-handling unit serving a floor \
             (building → floor → chiller)",
        ),
        "hospital" => (
            "healthcare",
            "A hospital with MRI helium compressors in radiology, housed in a plant room \
             (hospital → department → MRI compressor)",
        ),
        other => (other, "Simulated assets"),
    }
}

impl Plant {
    /// The plant's models and twins as one [`Pack`] per root twin's industry, in the order
    /// the roots were added.
    pub fn packs(&self) -> Vec<Pack> {
        let twins = self.twins();
        let models = self.models();
        let root_of = |t: &Twin| {
            let mut cur = t;
            // Parents come first in `twins()`, so the walk ends; the bound guards bad input.
            for _ in 0..twins.len() {
                match cur
                    .parent
                    .as_ref()
                    .and_then(|p| twins.iter().find(|x| &x.id == p))
                {
                    Some(p) => cur = p,
                    None => break,
                }
            }
            cur.model.clone()
        };
        let mut packs: Vec<Pack> = Vec::new();
        for t in &twins {
            let root = root_of(t);
            let (name, description) = industry(&root);
            let i = match packs.iter().position(|p| p.name == name) {
                Some(i) => i,
                None => {
                    packs.push(Pack {
                        name: name.to_string(),
                        description: description.to_string(),
                        models: Vec::new(),
                        twins: Vec::new(),
                    });
                    packs.len() - 1
                }
            };
            let pack = &mut packs[i];
            if !pack.models.iter().any(|m| m.id == t.model) {
                if let Some(m) = models.iter().find(|m| m.id == t.model) {
                    pack.models.push(m.clone());
                }
            }
            pack.twins.push(t.clone());
        }
        packs
    }
}
