{#- A stable text key from several columns (NULLs kept distinct from empty strings). -#}
{% macro surrogate_key(columns) -%}
    md5(concat_ws('|', {% for column in columns -%}
        coalesce(cast({{ column }} as text), '<null>'){{ ", " if not loop.last }}
    {%- endfor %}))
{%- endmacro %}
