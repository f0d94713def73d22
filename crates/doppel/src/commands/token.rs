//! `doppel token`: create, list and revoke tokens. A running server picks changes up on the
//! next request that presents an unknown or revoked token.

use anyhow::{bail, Context};
use clap::Subcommand;
use doppel_server::auth::{create_token, list_tokens, revoke_token};
use doppel_server::Role;

use super::DataDir;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    Create {
        /// reader (read everything), writer (also write readings) or admin (also change models and twins).
        #[arg(long, default_value = "reader")]
        role: String,
        /// A note to recognize the token by.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// List tokens (ids, roles, names; never secrets).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a token by id (the 8 hex digits after `dpl_`).
    Revoke {
        id: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[allow(clippy::print_stdout)]
pub fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { role, name, data } => {
            let Some(role) = Role::parse(&role) else {
                bail!("--role must be reader, writer or admin, not `{role}`");
            };
            std::fs::create_dir_all(&data.path)
                .with_context(|| format!("creating {}", data.path.display()))?;
            let token = create_token(&data.path, role, &name)?;
            println!("{token}");
        }
        TokenCommand::List { data } => {
            for t in list_tokens(&data.path)? {
                println!("{}\t{}\t{}\t{}", t.id, t.role.as_str(), t.created, t.name);
            }
        }
        TokenCommand::Revoke { id, data } => {
            if !revoke_token(&data.path, &id)? {
                bail!("no token with id `{id}` in {}", data.path.display());
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}
