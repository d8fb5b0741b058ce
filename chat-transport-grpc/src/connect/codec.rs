//! The codec of `Connect`: client frames are decoded with prost; server frames are
//! already encoded (once per event by the engine's fan-out, once per reply here) and are
//! written as they are.

use bytes::{BufMut, Bytes};
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstCodec;

use crate::proto;

/// Decodes [`proto::ClientFrame`]s, writes encoded [`proto::ServerFrame`]s.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectCodec;

/// Writes a frame's bytes into the message buffer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FrameEncoder;

impl Encoder for FrameEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

type Prost = ProstCodec<proto::ClientFrame, proto::ClientFrame>;

impl Codec for ConnectCodec {
    type Encode = Bytes;
    type Decode = proto::ClientFrame;
    type Encoder = FrameEncoder;
    type Decoder = <Prost as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        Prost::default().decoder()
    }
}
