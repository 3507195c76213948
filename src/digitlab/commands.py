"""Registration point for the subcommands that live beside their own modules."""


def register(sub) -> None:
    pass
