//! One module per subcommand.

pub mod bench;
pub mod demo;
pub mod eval;
pub mod eval_advice;
pub mod eval_faults;
pub mod eval_fleet_rul;
pub mod serve;
pub mod sim;
pub mod store;
pub mod token;
pub mod whatif;

use std::path::PathBuf;

/// The data directory flag shared by every command that touches stored state.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// Directory holding the catalog, history and tokens.
    #[arg(
        long = "data-dir",
        env = "DOPPEL_DATA_DIR",
        default_value = "./doppel-data"
    )]
    pub path: PathBuf,
}
