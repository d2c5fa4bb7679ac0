# epmdpxy comes from ERL_LIBS (make install puts it in
# $(PREFIX)/lib/erlang/lib); say so plainly when it is not there.
case Code.ensure_loaded(:epmdpxy_cluster) do
  {:module, _} ->
    :ok

  _ ->
    raise "epmdpxy is not in the code path: set ERL_LIBS to the directory " <>
            "that holds epmdpxy-<vsn> (e.g. /usr/local/lib/erlang/lib)"
end

ExUnit.start()
