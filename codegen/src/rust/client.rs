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
        let method = method_ident(&format!(
            "send_{}",
            contract.messages[message].key.to_snake_case()
        ));
        let payload = payload_type(contract, message);
        let doc = format!(
            "Sends message `{}` to the server.",
            contract.messages[message].key
        );
        quote! {
            #[doc = #doc]
            pub async fn #method(&mut self, message: &#payload) -> Result<(), ClientError> {
                self.client.send_message(message).await
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
            client: Client,
        }

        impl #client {
            /// The handshake request for `base_url` (`ws://host:port`) and `params`; add
            /// headers to it before [`Self::connect_with`] if needed.
            pub fn request(base_url: &str, params: &#params) -> Result<Request, ClientError> {
                let query = params.query_pairs();
                let headers = params.header_pairs();
                ::wfs_runtime::client::request(base_url, &params.path(), &query, &headers)
            }

            /// Connects to `base_url` (`ws://host:port`) with `params`.
            pub async fn connect(base_url: &str, params: &#params) -> Result<Self, ClientError> {
                Self::connect_with(Self::request(base_url, params)?).await
            }

            /// Connects with a prepared handshake request.
            pub async fn connect_with(request: Request) -> Result<Self, ClientError> {
                Client::connect(request).await.map(|client| Self { client })
            }

            #(#sends)*

            /// The next message from the server, checked against the contract.
            pub async fn recv(&mut self) -> Result<#outbound, ClientError> {
                self.client.recv_message().await
            }

            /// The untyped client, to send what the contract does not allow (for tests).
            pub fn raw(&mut self) -> &mut Client {
                &mut self.client
            }

            /// Closes the connection (1000).
            pub async fn close(self) -> Result<(), ClientError> {
                self.client.close().await
            }
        }
    }
}
