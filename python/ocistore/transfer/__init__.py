"""Moving images between registries, the store and root filesystems: pull, push and copy.

This layer sits above ``ocistore.registry`` (the wire protocol) and ``ocistore.store`` (the
content store), as crane sits above go-containerregistry's ``remote`` and ``layout``: the
protocol never imports the store, the store never imports the protocol.
"""
