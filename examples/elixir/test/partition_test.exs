defmodule PartitionDemoTest do
  # every test starts its own nodes and daemon: no two tests share them
  use ExUnit.Case, async: false

  @await 15_000

  setup do
    # the nodes load this project's modules (and Elixir's) from here
    paths = [:code.lib_dir(:elixir, :ebin), :code.which(PartitionDemo) |> Path.dirname()]
    {:ok, c} = :epmdpxy_cluster.start(3, %{code_paths: Enum.map(paths, &to_string/1)})
    on_exit(fn -> :epmdpxy_cluster.stop(c) end)
    for n <- [:n1, :n2, :n3], do: {:ok, _} = call(c, n, :start, [])
    %{cluster: c}
  end

  test "a write reaches only the writer's side of a split", %{cluster: c} do
    :ok = :epmdpxy_cluster.split(c, [[:n1], [:n2, :n3]])
    :ok = :epmdpxy_cluster.await_partition(c, @await)
    refute :epmdpxy_cluster.sees(c, :n1, :n2)

    :ok = call(c, :n2, :put, [:colour, :blue])
    assert await(fn -> call(c, :n3, :get, [:colour]) == :blue end)
    assert call(c, :n1, :get, [:colour]) == nil

    :ok = :epmdpxy_cluster.heal(c)
    :ok = :epmdpxy_cluster.connect_all(c)
    :ok = :epmdpxy_cluster.await_connected(c, @await)
    :ok = call(c, :n2, :put, [:colour, :green])
    assert await(fn -> call(c, :n1, :get, [:colour]) == :green end)
  end

  defp call(c, node, fun, args),
    do: :epmdpxy_cluster.call(c, node, PartitionDemo, fun, args)

  # polls until f.() is true, at most @await ms
  defp await(f, deadline \\ nil) do
    deadline = deadline || System.monotonic_time(:millisecond) + @await

    cond do
      f.() -> true
      System.monotonic_time(:millisecond) >= deadline -> false
      true -> Process.sleep(50) && await(f, deadline)
    end
  end
end
