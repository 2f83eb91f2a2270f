/* Internal to the codec module: the protobuf-c allocator over kn_malloc. */
#ifndef KN_CODEC_INTERNAL_H
#define KN_CODEC_INTERNAL_H

#include <protobuf-c/protobuf-c.h>

extern ProtobufCAllocator kn_codec_allocator;

#endif
