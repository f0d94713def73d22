//! Twins: live virtual copies of physical assets, placed in a hierarchy (site → line → pump →
//! motor) and linked by typed relations (`feeds`, `powers`, `located_in`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Value;

/// A typed, directed link from one twin to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    pub kind: String,
    pub target: String,
}

/// A twin's definition (its live state is kept by the engine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Twin {
    pub id: String,
    pub model: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    #[serde(default)]
    pub relations: Vec<Relation>,
}
