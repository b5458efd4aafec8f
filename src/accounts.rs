//! Accounts from the command line: `wfs user add | list | passwd | remove` on the server's own
//! database (SQLite in the data directory, or `--database-url`), and what `wfs serve` says
//! about the administrator on start (created now, with which password, or a
//! `WFS_ADMIN_PASSWORD` that came too late).
//!
//! Passwords come from a prompt on the terminal (asked twice, never echoed), from standard
//! input (`--password-stdin`, for scripts), or are generated and printed once
//! (`--generate-password`). None is ever logged.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::auth::passwords;
use crate::cli::DataArgs;
use crate::store::{AdminOnStart, Store, StoreError};

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (an administrator with --admin).
    Add {
        /// The user name: 1 to 150 characters, no control characters, no surrounding spaces.
        name: String,
        /// Administrators publish alerts and manage users.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        password: PasswordSource,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the users, one a line: `<name> admin|user`.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Set a user's password (`wfs user passwd admin` resets a lost admin password).
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordSource,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a user; their tokens stop working at once (running servers refuse new channel
    /// connections within 5 s). Not the last administrator.
    Remove {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Where the new password comes from; default: a prompt on the terminal.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct PasswordSource {
    /// Read the password from standard input (one line), for scripts.
    #[arg(long)]
    pub password_stdin: bool,
    /// Generate a password and print it, this once.
    #[arg(long)]
    pub generate_password: bool,
}

/// A password to set, and whether to print it (it was generated).
struct Chosen {
    password: String,
    generated: bool,
}

/// Runs `wfs user ...`.
pub async fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let data = match &args.command {
        UserCommand::Add { data, .. }
        | UserCommand::List { data }
        | UserCommand::Passwd { data, .. }
        | UserCommand::Remove { data, .. } => data,
    };
    let store = open_existing(data).await?;
    let outcome = match &args.command {
        UserCommand::Add {
            name,
            admin,
            password,
            ..
        } => add(&store, name, *admin, password).await,
        UserCommand::List { .. } => list(&store).await,
        UserCommand::Passwd { name, password, .. } => passwd(&store, name, password).await,
        UserCommand::Remove { name, .. } => remove(&store, name).await,
    };
    store.close().await;
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Failure::User(message)) => {
            eprintln!("{message}");
            Ok(ExitCode::FAILURE)
        }
        Err(Failure::Other(error)) => Err(error),
    }
}

/// A refusal the user can act on (printed alone, exit 1), or anything else (anyhow's chain).
enum Failure {
    User(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Other(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        match error {
            StoreError::DuplicateUser(name) => {
                Failure::User(format!("User '{name}' already exists."))
            }
            StoreError::UnknownUser(name) => {
                Failure::User(format!("There is no user '{name}' (see `wfs user list`)."))
            }
            StoreError::LastAdmin(name) => Failure::User(format!(
                "'{name}' is the last administrator: make another one first \
                 (`wfs user add NAME --admin`), or change its password with `wfs user passwd {name}`."
            )),
            StoreError::InvalidUser(reason) => Failure::User(format!("Invalid user: {reason}.")),
            other => Failure::Other(anyhow::Error::new(other).context("the database failed")),
        }
    }
}

async fn add(
    store: &Store,
    name: &str,
    admin: bool,
    source: &PasswordSource,
) -> Result<(), Failure> {
    // Refused before asking for a password that would be thrown away.
    if store.user_by_name(name).await?.is_some() {
        return Err(StoreError::DuplicateUser(name.to_owned()).into());
    }
    let chosen = choose(name, source)?;
    let user = store.create_user(name, &chosen.password, admin).await?;
    let role = if user.is_admin {
        "administrator"
    } else {
        "user"
    };
    if chosen.generated {
        println!(
            "Created {role} '{}' with password: {}\nIt is shown only this once.",
            user.username, chosen.password
        );
    } else {
        println!("Created {role} '{}'.", user.username);
    }
    Ok(())
}

async fn list(store: &Store) -> Result<(), Failure> {
    let users = store.users().await?;
    if users.is_empty() {
        return Err(Failure::User(
            "There are no users yet: `wfs serve` creates `admin` on its first start.".to_owned(),
        ));
    }
    for user in users {
        let role = if user.is_admin { "admin" } else { "user" };
        println!("{} {role}", user.username);
    }
    Ok(())
}

async fn passwd(store: &Store, name: &str, source: &PasswordSource) -> Result<(), Failure> {
    if store.user_by_name(name).await?.is_none() {
        return Err(StoreError::UnknownUser(name.to_owned()).into());
    }
    let chosen = choose(name, source)?;
    let user = store.set_password(name, &chosen.password).await?;
    if chosen.generated {
        println!(
            "New password of '{}': {}\nIt is shown only this once.",
            user.username, chosen.password
        );
    } else {
        println!("Password of '{}' changed.", user.username);
    }
    Ok(())
}

async fn remove(store: &Store, name: &str) -> Result<(), Failure> {
    let user = store.remove_user(name).await?;
    println!("Removed user '{}'.", user.username);
    Ok(())
}

/// The new password of `name` from `source`, refused when weak.
fn choose(name: &str, source: &PasswordSource) -> Result<Chosen, Failure> {
    let password = if source.generate_password {
        let password = passwords::generate()
            .map_err(|error| anyhow::Error::new(error).context("cannot generate a password"))?;
        return Ok(Chosen {
            password,
            generated: true,
        });
    } else if source.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        // One line: the newline that `echo` or a here-string adds is not part of it.
        let line = text.strip_suffix('\n').unwrap_or(&text);
        line.strip_suffix('\r').unwrap_or(line).to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::User(
                "No terminal to ask for the password: pass --password-stdin (and pipe it in) or \
                 --generate-password."
                    .to_owned(),
            ));
        }
        let first = rpassword::prompt_password(format!("Password for '{name}': "))
            .context("cannot read the password from the terminal")?;
        passwords::check_strength(name, &first).map_err(weak)?;
        let again = rpassword::prompt_password("The same password again: ")
            .context("cannot read the password from the terminal")?;
        if again != first {
            return Err(Failure::User(
                "The two passwords differ; nothing was changed.".to_owned(),
            ));
        }
        first
    };
    passwords::check_strength(name, &password).map_err(weak)?;
    Ok(Chosen {
        password,
        generated: false,
    })
}

fn weak(reason: passwords::WeakPassword) -> Failure {
    Failure::User(format!("Weak password: {reason}; nothing was changed."))
}

/// The server's database, which must exist already: these commands never create one in a
/// folder that is not the server's (its first start creates the database and `admin`).
async fn open_existing(data: &DataArgs) -> anyhow::Result<Store> {
    let url = match &data.database_url {
        // A SQLite URL is opened read-write, never created (the store would add `mode=rwc`).
        Some(url) if url.starts_with("sqlite:") && !url.contains("mode=") => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}mode=rw")
        }
        Some(url) => url.clone(),
        None => {
            let file = data.data_dir.join(crate::data_dir::SQLITE_FILE);
            if !file.exists() {
                anyhow::bail!(
                    "There is no wfs database in {}: run this where `wfs serve` keeps its data, \
                     or pass --data-dir (WFS_DATA_DIR) or --database-url (WFS_DATABASE_URL). \
                     The first `wfs serve` creates it.",
                    data.data_dir.display()
                );
            }
            format!("sqlite://{}?mode=rw", file.display())
        }
    };
    Store::open(&url)
        .await
        .with_context(|| match &data.database_url {
            Some(_) => {
                "cannot open the database given by --database-url / WFS_DATABASE_URL".to_owned()
            }
            None => format!("cannot open the database in {}", data.data_dir.display()),
        })
}

/// On `wfs serve`, once the address is bound: creates `admin` when there are no users, and
/// says what happened. A generated password is printed (never logged), only now.
pub async fn admin_on_start(store: &Store, admin_password: Option<&str>) -> anyhow::Result<()> {
    match store
        .first_admin_on_start(admin_password)
        .await
        .context("cannot create the admin user")?
    {
        AdminOnStart::Created {
            generated: Some(generated),
        } => println!(
            "Created user `admin` with password: {generated}\n\
             It is shown only this once; `wfs user passwd admin` sets a new one. \
             Set WFS_ADMIN_PASSWORD before the first start to choose it."
        ),
        AdminOnStart::Created { generated: None } => {
            tracing::info!("created user `admin` with the password in WFS_ADMIN_PASSWORD");
        }
        AdminOnStart::UsersExist if admin_password.is_some() => tracing::warn!(
            "WFS_ADMIN_PASSWORD is ignored: the users exist already, so no admin was created \
             and no password changed. Use `wfs user passwd admin` to change it."
        ),
        AdminOnStart::UsersExist => {}
    }
    Ok(())
}
