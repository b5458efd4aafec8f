//! The typed client of a channel: the contract from the client's point of view.
//!
//! What the server receives, the client sends (one method per message), and what the server
//! sends, the client receives as the channel's `Outbound` enum, checked against the contract,
//! so a test that reads frames through it also proves the server kept to the contract.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::quote;

use super::channels::{ChannelPlan, payload_type};
use super::names::method_ident;
use crate::model::Contract;

pub(crate) fn channel_client(contract: &Contract, plan: &ChannelPlan) -> TokenStream {
    let client = plan.ident("Client");
    let params = plan.ident("Params");
    let outbound = plan.ident("Outbound");
    let channel = &contract.channels[plan.id];
    let sends = plan.inbound.iter().map(|&message| {
        let method = method_ident(&format!("send_{}", contract.messages[message].key.to_snake_case()));
        let payload = payload_type(contract, message);
        let doc = format!("Sends message `{}` to the server.", contract.messages[message].key);
        quote! {
            #[doc = #doc]
            pub async fn #method(&mut self, message: &#payload) -> ::std::result::Result<(), ::wfs_runtime::client::ClientError> {
                let text = ::wfs_runtime::serde_json::to_string(message).map_err(|error| ::wfs_runtime::client::ClientError::Request(error.to_string()))?;
                self.client.send_text(text).await
            }
        }
    });
    let doc = format!(
        "A client of channel `{}` at `{}`.",
        channel.key,
        channel.address.as_deref().unwrap_or_default()
    );
    quote! {
        #[doc = #doc]
        #[derive(Debug)]
        pub struct #client {
            client: ::wfs_runtime::client::Client,
        }

        impl #client {
            /// The handshake request for `base_url` (`ws://host:port`) and `params`; add
            /// headers to it before [`Self::connect_with`] if needed.
            pub fn request(base_url: &str, params: &#params) -> ::std::result::Result<::wfs_runtime::client::Request, ::wfs_runtime::client::ClientError> {
                let query = params.query_pairs();
                let headers = params.header_pairs();
                ::wfs_runtime::client::request(base_url, &params.path(), &query, &headers)
            }

            /// Connects to `base_url` (`ws://host:port`) with `params`.
            pub async fn connect(base_url: &str, params: &#params) -> ::std::result::Result<Self, ::wfs_runtime::client::ClientError> {
                Self::connect_with(Self::request(base_url, params)?).await
            }

            /// Connects with a prepared handshake request.
            pub async fn connect_with(request: ::wfs_runtime::client::Request) -> ::std::result::Result<Self, ::wfs_runtime::client::ClientError> {
                ::std::result::Result::Ok(Self { client: ::wfs_runtime::client::Client::connect(request).await? })
            }

            #(#sends)*

            /// The next message from the server, checked against the contract.
            pub async fn recv(&mut self) -> ::std::result::Result<#outbound, ::wfs_runtime::client::ClientError> {
                let text = self.client.recv_text().await?;
                let value: ::wfs_runtime::serde_json::Value = ::wfs_runtime::serde_json::from_str(&text)
                    .map_err(|error| ::wfs_runtime::client::ClientError::NotJson(error.to_string()))?;
                #outbound::decode(&value).map_err(|violations| ::wfs_runtime::client::ClientError::Unexpected { text, violations })
            }

            /// The untyped client, to send what the contract does not allow (for tests).
            pub fn raw(&mut self) -> &mut ::wfs_runtime::client::Client {
                &mut self.client
            }

            /// Closes the connection (1000).
            pub async fn close(self) -> ::std::result::Result<(), ::wfs_runtime::client::ClientError> {
                self.client.close().await
            }
        }
    }
}
