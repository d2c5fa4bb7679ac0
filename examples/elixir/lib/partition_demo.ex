defmodule PartitionDemo do
  @moduledoc """
  The code under test: a key-value store kept in each node's own ETS
  table, replicated by casting every write to the nodes this node can see.
  """

  @table :partition_demo

  @doc "Creates this node's table, owned by a process that lives on."
  def start do
    parent = self()

    pid =
      spawn(fn ->
        :ets.new(@table, [:named_table, :public])
        send(parent, :ready)
        Process.sleep(:infinity)
      end)

    receive do
      :ready -> {:ok, pid}
    after
      5000 -> {:error, :timeout}
    end
  end

  @doc "Writes here and on every node in nodes()."
  def put(key, value) do
    :ets.insert(@table, {key, value})
    for node <- Node.list(), do: :erpc.cast(node, :ets, :insert, [@table, {key, value}])
    :ok
  end

  @doc "This node's value for key, or nil."
  def get(key) do
    case :ets.lookup(@table, key) do
      [{^key, value}] -> value
      [] -> nil
    end
  end
end
