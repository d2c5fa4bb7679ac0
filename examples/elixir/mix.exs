# An Elixir project that tests under partitions with the Erlang
# application epmdpxy.  It has no Mix dependencies: the application comes
# from ERL_LIBS (e.g. /usr/local/lib/erlang/lib after `make install`), so
# `mix test` needs no network.
defmodule PartitionDemo.MixProject do
  use Mix.Project

  def project do
    [app: :partition_demo, version: "0.1.0", elixir: "~> 1.14", deps: []]
  end

  def application do
    [extra_applications: [:logger]]
  end
end
